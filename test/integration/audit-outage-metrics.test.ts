import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { openApp, startServices } from '../../src/app.js';
import { createLogger } from '../../src/observability/logger.js';
import { startRedis, waitUntil } from '../helpers/redis-server.js';
import { makeTestConfig } from '../helpers/test-config.js';

/** Not an app password: refused by the format check without a store read, so it is decided during an outage. */
const OLD_PASSWORD = 'Summer2026!';

// docs/operations.md: passgate_audit_queued (records held in memory while the store cannot be written) and
// passgate_audit_dropped_total (past audit.outage_buffer), as the ops endpoint of a running passgate shows them.
describe('the sign-in log outage metrics in a running passgate', () => {
  it('counts records held through a Redis outage and those dropped past the buffer, and empties the queue after', async () => {
    const redis = await startRedis({ own: true });
    const tc = makeTestConfig({
      redis: { url: redis.url, key_prefix: redis.prefix, command_timeout_ms: 500 },
      audit: { outage_buffer: 2 },
      smtp: { enabled: false },
      imap: { enabled: false },
      ops: { host: '127.0.0.1', port: 0 },
      auth: { failure_delay_ms: 0, failure_delay_jitter_ms: 0 },
    });
    const app = await openApp(tc.config, { logger: createLogger('silent') });
    const services = await startServices(app);
    const scrape = async () => (await fetch(`http://127.0.0.1:${services.ops!.port}/metrics`)).text();
    const sample = (text: string, name: string) => Number(new RegExp(`^${name} (\\S+)$`, 'm').exec(text)?.[1]);
    let redisUp = true;
    try {
      const before = await scrape();
      assert.deepEqual([sample(before, 'passgate_audit_queued'), sample(before, 'passgate_audit_dropped_total')], [0, 0]);
      await redis.stop();
      redisUp = false;
      for (let i = 0; i < 3; i++) {
        const outcome = await app.authenticator.authenticate({ protocol: 'smtp', clientIp: '198.51.100.7', secure: true, username: `old${i}@example.com`, password: OLD_PASSWORD });
        assert.equal(outcome.ok, false);
      }
      await waitUntil('metrics', 'one record dropped', async () => sample(await scrape(), 'passgate_audit_dropped_total') === 1, 10_000);
      assert.equal(sample(await scrape(), 'passgate_audit_queued'), 2, 'the buffer holds two records, the oldest was dropped');
      await redis.start();
      redisUp = true;
      await waitUntil('metrics', 'the queue written out', async () => sample(await scrape(), 'passgate_audit_queued') === 0, 20_000);
      const written = await app.audit.query({ limit: 10 });
      assert.deepEqual(written.filter((e) => e.action === 'login').map((e) => e.username).sort(), ['old1@example.com', 'old2@example.com']);
    } finally {
      if (!redisUp) await redis.start();
      await services.close(0);
      await app.close();
      await redis.close();
      tc.cleanup();
    }
  });
});
