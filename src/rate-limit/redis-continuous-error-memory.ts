import type { ContinuousErrorLimits, ContinuousErrorMemory, RememberedRefusal } from '../core/continuous-error-memory.js';
import type { RedisClient } from '../redis/redis-client-factory.js';

// KEYS: count, hold. ARGV: threshold, window ms, hold ms, the refusal (JSON). The count lives for the window from
// its first refusal; at the threshold the hold is set (with the refusal) and the count starts again.
const RECORD = `
local n = redis.call('INCR', KEYS[1])
if n == 1 then redis.call('PEXPIRE', KEYS[1], ARGV[2]) end
if n >= tonumber(ARGV[1]) then
  redis.call('SET', KEYS[2], ARGV[4], 'PX', ARGV[3])
  redis.call('DEL', KEYS[1])
  return 1
end
return 0`;

// KEYS: hold. The refusal and its remaining milliseconds, or nil.
const HELD = `
local v = redis.call('GET', KEYS[1])
if not v then return nil end
return {v, redis.call('PTTL', KEYS[1])}`;

/**
 * The continuous-error memory shared by every instance: `P cerr:{<key>}:n` (the count, expiring with its window)
 * and `P cerr:{<key>}:hold` (the remembered refusal, expiring with the hold). Both keys of a submission share a hash
 * tag, so each script runs on one Redis Cluster slot; the key is a hash (core's keyOf), never an address.
 */
export class RedisContinuousErrorMemory implements ContinuousErrorMemory {
  constructor(
    private readonly redis: RedisClient,
    private readonly keyPrefix: string,
  ) {}

  private keys(key: string): [string, string] {
    const base = `${this.keyPrefix}cerr:{${key}}`;
    return [`${base}:n`, `${base}:hold`];
  }

  async record(key: string, refusal: RememberedRefusal, limits: ContinuousErrorLimits): Promise<boolean> {
    const [count, hold] = this.keys(key);
    const held = await this.redis.eval(RECORD, 2, count, hold, String(limits.threshold), String(limits.windowMs), String(limits.holdMs), JSON.stringify(refusal));
    return held === 1;
  }

  async held(key: string): Promise<{ refusal: RememberedRefusal; remainingMs: number } | null> {
    const answer = (await this.redis.eval(HELD, 1, this.keys(key)[1])) as [string, number] | null;
    if (!answer) return null;
    const [json, remainingMs] = answer;
    return remainingMs > 0 ? { refusal: JSON.parse(json) as RememberedRefusal, remainingMs } : null;
  }

  async forget(key: string): Promise<void> {
    await this.redis.del(this.keys(key)[0]);
  }
}
