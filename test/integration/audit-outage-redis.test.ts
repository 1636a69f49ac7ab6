import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import { openApp, type App } from '../../src/app.js';
import type { AuditEvent } from '../../src/core/audit-log.js';
import { BufferedAuditLog } from '../../src/core/buffered-audit-log.js';
import { createLogger } from '../../src/observability/logger.js';
import { startRedis, waitUntil, type TestRedis } from '../helpers/redis-server.js';
import { makeTestConfig, type TestConfig } from '../helpers/test-config.js';
import { CLI_ACTOR } from '../../src/core/actor.js';

/*
 * The sign-in log through a Redis outage, on a real Redis the test kills, restarts, freezes and wakes. A login that
 * needs no store is decided during an outage: a password that is not an app password at all (a device still
 * configured with the mailbox's old password) is refused before any lookup. One that needs the store is answered
 * "unavailable" (the record is read even on a credential-cache hit, so revocation applies at once). Either way its
 * record is held in memory and written, with its own time, once Redis answers again.
 */

const COMMAND_TIMEOUT_MS = 800;
/** Not an app password (wrong alphabet and length): refused by the format check, no store read. */
const OLD_PASSWORD = 'Summer2026!';

describe('the sign-in log through a Redis outage', () => {
  let redis: TestRedis;
  let tc: TestConfig;
  let app: App;
  let redisUp = true;

  before(async () => {
    redis = await startRedis({ own: true });
    tc = makeTestConfig({ redis: { url: redis.url, key_prefix: redis.prefix, command_timeout_ms: COMMAND_TIMEOUT_MS } });
    app = await openApp(tc.config, { logger: createLogger('silent') });
  });
  after(async () => {
    if (!redisUp) await redis.start();
    await app?.close();
    await redis?.close();
    tc?.cleanup();
  });

  /** A login's outcome and how long the authenticator took to decide it. */
  async function login(username: string, password: string) {
    const started = Date.now();
    const outcome = await app.authenticator.authenticate({ protocol: 'smtp', clientIp: '198.51.100.1', secure: true, username, password });
    return { reason: outcome.reason, ms: Date.now() - started };
  }

  const buffer = () => {
    assert.ok(app.audit instanceof BufferedAuditLog, 'openApp wraps the audit log');
    return app.audit;
  };

  const written = async (username: string) => (await app.audit.query({ username, limit: 50 })).filter((e: AuditEvent) => e.action === 'login');

  it('Redis killed: logins needing no store are answered at once, not after command_timeout_ms; their records are written when it is back', async () => {
    const { password } = await app.admin.appPasswords.create(CLI_ACTOR, { username: 'crash@example.com', name: 'Scanner' });
    const started = Date.now();
    await redis.stop();
    redisUp = false;
    const first = await login('crash@example.com', OLD_PASSWORD);
    assert.equal(buffer().queued, 1, 'the first record, whose write failed, is held');
    const next = [await login('crash@example.com', OLD_PASSWORD), await login('crash@example.com', OLD_PASSWORD)];
    const needsStore = await login('crash@example.com', password);
    assert.deepEqual([first, ...next].map((l) => l.reason), ['invalid-credentials', 'invalid-credentials', 'invalid-credentials']);
    assert.equal(needsStore.reason, 'unavailable');
    // Only the first waited for its audit write to fail; the others joined the queue without asking Redis.
    // The first waited for its write to fail; the others asked nothing, so they answer in a fraction of that wait
    // even on a loaded machine (a bound relative to the wait they skipped, not an absolute one).
    for (const { ms } of next) assert.ok(ms < Math.max(first.ms / 2, COMMAND_TIMEOUT_MS / 4), `answered in ${ms} ms (first: ${first.ms} ms)`);
    assert.equal(buffer().queued, 4);

    await redis.start();
    redisUp = true;
    // Reconnecting wakes the flusher at once (no wait for the backoff). The restarted test Redis kept nothing.
    await waitUntil('audit buffer', 'held records written', async () => buffer().queued === 0, 10_000);
    const records = await written('crash@example.com');
    assert.deepEqual(records.map((e) => e.reason), ['unavailable', 'invalid-credentials', 'invalid-credentials', 'invalid-credentials']);
    const times = records.map((e) => e.at);
    assert.ok(times.every((at) => at >= started && at < Date.now()), 'each keeps the time of its login');
    assert.deepEqual(times, [...times].sort((a, b) => b - a), 'newest first by that time');
    assert.equal(buffer().dropped, 0);
  });

  it('Redis hung: a write that timed out but ran when Redis woke is not written twice', async () => {
    redis.pause();
    let during;
    try {
      during = [await login('hung@example.com', OLD_PASSWORD), await login('hung@example.com', OLD_PASSWORD)];
      assert.equal(buffer().queued, 2);
    } finally {
      redis.resume();
    }
    // Woken, Redis runs the first XADD it was sent; the flusher finds that record there and writes only the other.
    await waitUntil('audit buffer', 'held records written', async () => buffer().queued === 0, 10_000);
    const records = await written('hung@example.com');
    assert.deepEqual(records.map((e) => e.reason), ['invalid-credentials', 'invalid-credentials']);
    // Frozen, Redis makes every command wait command_timeout_ms (the rate-limit checks too): the second login
    // still waits for those, but not for an audit write.
    assert.ok(during[0]!.ms - during[1]!.ms > COMMAND_TIMEOUT_MS / 2, `the second login skipped the audit wait: ${during.map((l) => l.ms)} ms`);
  });
});
