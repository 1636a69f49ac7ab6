import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import { openApp, type App } from '../../src/app.js';
import type { AuthRequest } from '../../src/core/authenticator.js';
import { createLogger } from '../../src/observability/logger.js';
import { startRedis, type TestRedis } from '../helpers/redis-server.js';
import { makeTestConfig, type TestConfig } from '../helpers/test-config.js';
import { CLI_ACTOR } from '../../src/core/actor.js';

describe('Authenticator on a real Redis, shared by two instances', () => {
  let redis: TestRedis;
  let tc: TestConfig;
  let a: App;
  let b: App;

  before(async () => {
    redis = await startRedis({ own: true });
    tc = makeTestConfig({ redis: { url: redis.url, key_prefix: redis.prefix, command_timeout_ms: 300 } });
    a = await openApp(tc.config, { logger: createLogger('silent') });
    b = await openApp(tc.config, { logger: createLogger('silent') });
  });
  after(async () => {
    await a.close();
    await b.close();
    await redis.close();
    tc.cleanup();
  });

  const login = (app: App, over: Partial<AuthRequest> & { username: string; password: string }) =>
    app.authenticator.authenticate({ protocol: 'imap', clientIp: '198.51.100.1', secure: true, ...over });

  it('a password created through one instance works on the other at once', async () => {
    const { password } = await a.admin.appPasswords.create(CLI_ACTOR, { username: 'shared@example.com', name: 'Laptop' });
    assert.equal((await login(b, { username: 'shared@example.com', password })).ok, true);
    assert.equal((await b.audit.query({ username: 'shared@example.com', limit: 5 }))[0]!.reason, 'ok');
  });

  it('limits a brute force spread over both instances as one', async () => {
    const { password } = await a.admin.appPasswords.create(CLI_ACTOR, { username: 'spread@example.com', name: 'Phone' });
    const reasons: string[] = [];
    for (let i = 0; i < 12; i++) {
      const outcome = await login(i % 2 ? a : b, { username: 'spread@example.com', password: `wrongguess${'abcdefghijkl'[i]}xxxxx`, clientIp: '203.0.113.9' });
      reasons.push(outcome.reason);
    }
    // pair.max_failures = 10, counted across both instances: the 11th attempt is refused before verification.
    assert.deepEqual(reasons.slice(0, 10), Array(10).fill('invalid-credentials'));
    assert.deepEqual(reasons.slice(10), ['rate-limited', 'rate-limited']);
    const blocked = await login(a, { username: 'spread@example.com', password, clientIp: '203.0.113.9' });
    assert.deepEqual([blocked.ok, blocked.reason], [false, 'rate-limited']);
    assert.equal((await login(b, { username: 'spread@example.com', password, clientIp: '203.0.113.10' })).ok, true);
  });

  it('gives a temporary outcome, quickly, while Redis hangs, and recovers when it answers again', async () => {
    const { password } = await a.admin.appPasswords.create(CLI_ACTOR, { username: 'hang@example.com', name: 'Scanner' });
    redis.pause();
    try {
      const started = Date.now();
      const outcomes = await Promise.all([
        login(a, { username: 'hang@example.com', password }),
        login(b, { username: 'hang@example.com', password: 'abcdabcdabcdabcd' }),
      ]);
      for (const outcome of outcomes) assert.deepEqual([outcome.ok, outcome.reason, !outcome.ok && outcome.temporary], [false, 'unavailable', true]);
      assert.ok(Date.now() - started < 3000, `took ${Date.now() - started} ms`);
    } finally {
      redis.resume();
    }
    assert.equal((await login(a, { username: 'hang@example.com', password })).ok, true);
  });

  it('survives Redis being killed and restarted: temporary outcomes meanwhile, then normal service', async () => {
    await redis.stop();
    const down = await login(a, { username: 'shared@example.com', password: 'abcdabcdabcdabcd' });
    assert.deepEqual([down.ok, down.reason], [false, 'unavailable']);
    await assert.rejects(a.admin.appPasswords.create(CLI_ACTOR, { username: 'x@example.com', name: 'x' }), { code: 'PG_STORE_UNAVAILABLE' });
    await redis.start();
    // The test Redis keeps nothing on disk, so state is gone; service is back as soon as ioredis reconnects.
    const deadline = Date.now() + 10_000;
    let created;
    while (!created) {
      try {
        created = await b.admin.appPasswords.create(CLI_ACTOR, { username: 'back@example.com', name: 'After restart' });
      } catch (error) {
        if (Date.now() > deadline) throw error;
        await new Promise((r) => setTimeout(r, 200));
      }
    }
    assert.equal((await login(a, { username: 'back@example.com', password: created.password })).ok, true);
  });
});
