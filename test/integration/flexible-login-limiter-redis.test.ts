import assert from 'node:assert/strict';
import { once } from 'node:events';
import { after, before, describe, it } from 'node:test';
import { Redis } from 'ioredis';
import type { RateLimitConfig } from '../../src/config/config-schema.js';
import type { GatewayError } from '../../src/core/gateway-error.js';
import type { LoginAttemptKey } from '../../src/core/login-limiter.js';
import { FlexibleLoginLimiter } from '../../src/rate-limit/flexible-login-limiter.js';
import { startRedis, type TestRedis } from '../helpers/redis-server.js';

const config: RateLimitConfig = {
  trusted_networks: [],
  pair: { max_failures: 4, block_seconds: 60, max_block_seconds: 600 },
  ip: { burst_failures: 100, burst_seconds: 60, daily_failures: 1000, block_seconds: 3600 },
  user: { max_distinct_failures: 100, lock_seconds: 3600, known_ip_days: 20 },
};

const attempt = (username: string): LoginAttemptKey => ({ username, ip: '198.51.100.7', trusted: false });

async function ready(redis: Redis): Promise<void> {
  if (redis.status !== 'ready') await once(redis, 'ready');
}

describe('FlexibleLoginLimiter on Redis', () => {
  let server: TestRedis;
  const clients: Redis[] = [];
  const errors: GatewayError[] = [];
  let a: FlexibleLoginLimiter;
  let b: FlexibleLoginLimiter;
  let redisDown = false;

  before(async () => {
    server = await startRedis({ own: true });
    for (let i = 0; i < 2; i++) {
      const redis = new Redis(server.url, { commandTimeout: 500, maxRetriesPerRequest: 1, retryStrategy: (n) => Math.min(n * 100, 1000) });
      redis.on('error', () => {});
      clients.push(redis);
    }
    // Until a client is ready the limiter answers from its insurance (rejectIfRedisNotReady), not from Redis.
    await Promise.all(clients.map(ready));
    // Two gateway instances, each with its own connection and its own insurance memory.
    a = new FlexibleLoginLimiter(config, { redis: clients[0]!, keyPrefix: server.prefix }, (e) => errors.push(e));
    b = new FlexibleLoginLimiter(config, { redis: clients[1]!, keyPrefix: server.prefix }, (e) => errors.push(e));
  });

  after(async () => {
    await a?.close();
    await b?.close();
    for (const redis of clients) redis.disconnect();
    // The helper's stop() waits for an exit that a stopped server already had: close only a running one.
    if (!redisDown) await server?.close();
  });

  it('shares counters between instances: failures spread over both trip one block', async () => {
    const key = attempt('alice');
    assert.deepEqual(await a.recordFailure(key, 'fp-1'), { blocked: false });
    assert.deepEqual(await b.recordFailure(key, 'fp-2'), { blocked: false });
    assert.deepEqual(await a.recordFailure(key, 'fp-3'), { blocked: false });
    assert.deepEqual(await b.recordFailure(key, 'fp-4'), { blocked: true, scope: 'pair', retryAfterMs: 60_000 });
    const seen = await a.check(key);
    assert.ok(seen.blocked && seen.scope === 'pair' && seen.retryAfterMs > 58_000, 'the block b wrote is what a reads');

    const keys = await clients[0]!.keys(`${server.prefix}*`);
    assert.ok(keys.includes(`${server.prefix}rl:pair:block:{u:alice}:198.51.100.7`), keys.join(' '));
    assert.ok(keys.every((k) => k.startsWith(`${server.prefix}rl:`)));
    assert.deepEqual(errors, []);
  });

  it('keeps enforcing on this instance while Redis is down, and uses Redis again once it is back', async () => {
    await server.stop();
    redisDown = true;
    const key = attempt('bob');
    // The insurance answers: no throw, and the block still comes after max_failures.
    assert.deepEqual(await a.check(key), { blocked: false });
    for (let i = 1; i < 4; i++) assert.deepEqual(await a.recordFailure(key, `fp-${i}`), { blocked: false });
    assert.deepEqual(await a.recordFailure(key, 'fp-4'), { blocked: true, scope: 'pair', retryAfterMs: 60_000 });
    assert.equal((await a.check(key)).blocked, true);
    await a.recordSuccess(attempt('carol'));
    assert.deepEqual(errors, [], 'RLF fell back to the insurance; nothing reached onError');

    await server.start();
    redisDown = false;
    await Promise.all(clients.map(ready));
    // A SIGKILLed Redis without persistence comes back empty; the block made during the outage holds on a.
    assert.equal((await a.check(key)).blocked, true, 'the insurance block outlives the outage on this instance');

    const dave = attempt('dave');
    await a.recordFailure(dave, 'fp-1');
    await b.recordFailure(dave, 'fp-2');
    await a.recordFailure(dave, 'fp-3');
    assert.deepEqual(await b.recordFailure(dave, 'fp-4'), { blocked: true, scope: 'pair', retryAfterMs: 60_000 });
    assert.equal((await a.check(dave)).blocked, true, 'shared through Redis again');
    assert.equal(await clients[1]!.exists(`${server.prefix}rl:pair:block:{u:dave}:198.51.100.7`), 1);
  });
});
