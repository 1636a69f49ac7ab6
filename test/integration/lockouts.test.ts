import assert from 'node:assert/strict';
import { once } from 'node:events';
import { after, before, describe, it } from 'node:test';
import { Redis } from 'ioredis';
import type { RateLimitConfig } from '../../src/config/config-schema.js';
import type { Actor } from '../../src/core/actor.js';
import { CLI_ACTOR } from '../../src/core/actor.js';
import type { LoginAttemptKey } from '../../src/core/login-limiter.js';
import { FlexibleLoginLimiter } from '../../src/rate-limit/flexible-login-limiter.js';
import { openApp, type App } from '../../src/app.js';
import { createLogger } from '../../src/observability/logger.js';
import { startRedis, type TestRedis } from '../helpers/redis-server.js';
import { makeTestConfig, type TestConfig } from '../helpers/test-config.js';

const rules: RateLimitConfig = {
  trusted_networks: [],
  pair: { max_failures: 2, block_seconds: 60, max_block_seconds: 600 },
  ip: { burst_failures: 3, burst_seconds: 60, daily_failures: 1000, block_seconds: 3600 },
  user: { max_distinct_failures: 2, lock_seconds: 3600, known_ip_days: 0 },
};
const admin: Actor = { role: 'admin', id: 'boss@example.com', mailboxes: [], ip: '198.51.100.50', userAgent: 'test' };
const user: Actor = { role: 'user', id: 'victim@example.com', mailboxes: ['victim@example.com'], ip: null, userAgent: null };

describe('LockoutAdmin on the in-memory limiter (the embedded store)', () => {
  let tc: TestConfig;
  let app: App;
  before(async () => {
    tc = makeTestConfig({ rate_limit: rules, auth: { failure_delay_ms: 0, failure_delay_jitter_ms: 0 } });
    app = await openApp(tc.config, { logger: createLogger('silent') });
  });
  after(async () => {
    await app.close();
    tc.cleanup();
  });

  const wrong = (username: string, clientIp: string, n: number) =>
    app.authenticator.authenticate({ username, password: `wrong-password-${n}`, protocol: 'imap', clientIp, secure: true });

  it('lists a locked user, a blocked address and a blocked pair, and unlocks each so logins are verified again', async () => {
    await wrong('victim@example.com', '192.0.2.1', 1);
    await wrong('victim@example.com', '192.0.2.1', 2); // the pair (victim, 192.0.2.1) trips
    await wrong('victim@example.com', '192.0.2.2', 3); // a third distinct password: the user lock trips
    for (let n = 0; n < 4; n++) await wrong(`spray${n}@example.com`, '192.0.2.9', n); // the address trips
    const listed = await app.admin.lockouts.list(admin);
    const keys = listed.map((l) => `${l.kind}: ${l.key}`).sort();
    assert.deepEqual(keys, ['address: 192.0.2.9', 'user-address: victim@example.com 192.0.2.1', 'user: victim@example.com']);
    assert.ok(listed.every((l) => l.until > Date.now()));

    await assert.rejects(app.admin.lockouts.list(user), { code: 'PG_FORBIDDEN' });
    await assert.rejects(app.admin.lockouts.unlock(user, 'user', 'victim@example.com'), { code: 'PG_FORBIDDEN' });

    const gate = (username: string, ip: string) => app.limiter.check({ username, ip, trusted: false });
    assert.equal((await gate('victim@example.com', '192.0.2.1')).blocked, true);
    assert.equal(await app.admin.lockouts.unlock(admin, 'user-address', 'victim@example.com 192.0.2.1'), true);
    assert.equal(await app.admin.lockouts.unlock(CLI_ACTOR, 'user', 'Victim@example.com'), true);
    assert.equal((await gate('victim@example.com', '192.0.2.1')).blocked, false, 'pair and user lock lifted');
    assert.equal((await gate('someone@example.com', '192.0.2.9')).blocked, true);
    assert.equal(await app.admin.lockouts.unlock(admin, 'address', '192.0.2.9'), true);
    assert.equal((await gate('someone@example.com', '192.0.2.9')).blocked, false);
    assert.deepEqual(await app.admin.lockouts.list(admin), []);
    assert.equal(await app.admin.lockouts.unlock(admin, 'address', '192.0.2.9'), false, 'no longer listed');
    await assert.rejects(app.admin.lockouts.unlock(admin, 'user-address', 'no-address-here'), { code: 'PG_INVALID_INPUT' });

    const [audited] = await app.audit.query({ action: 'lockout.unlock', limit: 1 });
    assert.deepEqual([audited!.username, audited!.clientIp], ['(address)', '198.51.100.50']);
    assert.match(audited!.detail!, /^by boss@example\.com \(admin\), agent "test": unlocked address 192\.0\.2\.9 \(was not listed\)$/);
  });
});

describe('lockouts on Redis: listed and lifted across instances', () => {
  let server: TestRedis;
  const clients: Redis[] = [];
  before(async () => {
    server = await startRedis();
    for (let i = 0; i < 2; i++) {
      const redis = new Redis(server.url);
      clients.push(redis);
      if (redis.status !== 'ready') await once(redis, 'ready');
    }
  });
  after(async () => {
    for (const c of clients) c.disconnect();
    await server.close();
  });

  it('a block tripped on one instance is listed and unlocked on another, and the first lets the pair in again', async () => {
    const [a, b] = clients.map((redis) => new FlexibleLoginLimiter(rules, { redis, keyPrefix: server.prefix })) as [FlexibleLoginLimiter, FlexibleLoginLimiter];
    const key: LoginAttemptKey = { username: 'shared@example.com', ip: '203.0.113.4', trusted: false };
    await a.recordFailure(key, 'f1');
    assert.equal((await a.recordFailure(key, 'f2')).blocked, true, 'two different wrong passwords trip the pair');
    const listed = await b.lockouts(Date.now());
    assert.deepEqual(listed.map((l) => [l.kind, l.key, l.failures]), [['user-address', 'shared@example.com 203.0.113.4', 2]]);
    assert.equal(await b.unlock('user-address', listed[0]!.key), true);
    assert.equal((await a.check(key)).blocked, false);
    assert.deepEqual(await a.lockouts(Date.now()), []);
  });

  it('forgets ended lockouts', async () => {
    const limiter = new FlexibleLoginLimiter(rules, { redis: clients[0]!, keyPrefix: server.prefix });
    const key: LoginAttemptKey = { username: 'later@example.com', ip: '203.0.113.5', trusted: false };
    await limiter.recordFailure(key, 'x');
    await limiter.recordFailure(key, 'y');
    assert.equal((await limiter.lockouts(Date.now())).length, 1);
    assert.deepEqual(await limiter.lockouts(Date.now() + 61_000), []);
  });
});
