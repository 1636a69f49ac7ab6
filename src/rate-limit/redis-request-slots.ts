import { randomUUID } from 'node:crypto';
import type { EventLogger } from '../core/event-logger.js';
import type { RequestSlots } from '../core/ports/request-slots.js';
import type { RedisClient } from '../redis/redis-client-factory.js';

/**
 * Takes a slot if fewer than the limit are held: the leases are a sorted set scored by their expiry (Redis's own
 * clock, so instances' clocks do not matter); expired leases (an instance that died mid-request) are dropped first.
 * KEYS[1] the set; ARGV: lease ms, limit, token. 1 taken, 0 full.
 */
const TAKE = `local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
redis.call('ZREMRANGEBYSCORE', KEYS[1], '-inf', now)
if redis.call('ZCARD', KEYS[1]) < tonumber(ARGV[2]) then
  redis.call('ZADD', KEYS[1], now + tonumber(ARGV[1]), ARGV[3])
  redis.call('PEXPIRE', KEYS[1], ARGV[1])
  return 1
end
return 0`;

/**
 * Request slots shared by every instance (Graph's 4 concurrent requests per mailbox, over the whole deployment):
 * `P slots:{<key>}`, one lease per request in flight, each expiring after `leaseMs` (the request timeout and a
 * margin) so a crashed instance cannot hold a slot for ever. A waiting request asks again every `pollMs` (with
 * jitter) until `waitMs`; a release is one ZREM. A Redis that cannot be reached falls back to `fallback` (this
 * instance's own slots) and is logged: mail keeps flowing, and Graph's own 429 is still honoured.
 */
export class RedisRequestSlots implements RequestSlots {
  private waiters = 0;

  constructor(
    private readonly redis: RedisClient,
    private readonly keyPrefix: string,
    private readonly options: { limit: number; leaseMs: number; waitMs: number; pollMs?: number },
    private readonly fallback: RequestSlots,
    private readonly log: EventLogger,
  ) {}

  get waiting(): number {
    return this.waiters + this.fallback.waiting;
  }

  async acquire(key: string): Promise<(() => void) | null> {
    const set = `${this.keyPrefix}slots:{${key}}`;
    const token = randomUUID();
    const deadline = Date.now() + this.options.waitMs;
    const poll = this.options.pollMs ?? 50;
    let counted = false;
    try {
      for (;;) {
        let taken: unknown;
        try {
          taken = await this.redis.eval(TAKE, 1, set, String(this.options.leaseMs), String(this.options.limit), token);
        } catch (error) {
          this.log.warn({ key, cause: (error as Error).message }, 'request slots unavailable');
          return this.fallback.acquire(key);
        }
        if (taken === 1) return this.releaser(set, token);
        if (Date.now() >= deadline) return null;
        if (!counted) {
          counted = true;
          this.waiters++;
        }
        await new Promise((resolve) => setTimeout(resolve, Math.min(deadline - Date.now(), poll + Math.random() * poll)));
      }
    } finally {
      if (counted) this.waiters--;
    }
  }

  private releaser(set: string, token: string): () => void {
    let released = false;
    return () => {
      if (released) return;
      released = true;
      this.redis.zrem(set, token).catch((error: Error) => this.log.warn({ cause: error.message }, 'request slot release failed'));
    };
  }
}
