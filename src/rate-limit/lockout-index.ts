import type { Lockout, LockoutKind } from '../core/lockout-list.js';
import type { RedisClient } from '../redis/redis-client-factory.js';

/** Where the limiter notes the blocks it trips, so they can be listed (the counters themselves cannot be). */
export interface LockoutIndex {
  add(lockout: Lockout): Promise<void>;
  /** Not yet ended at `now`, longest first. */
  list(now: number): Promise<Lockout[]>;
  remove(kind: LockoutKind, key: string): Promise<boolean>;
}

/** Most lockouts remembered; past it the ones ending soonest are forgotten (their blocks still hold). */
export const LOCKOUT_INDEX_MAX = 10_000;

const member = (kind: LockoutKind, key: string) => `${kind} ${key}`;

/** One process (the embedded store): a map, pruned of ended lockouts as it is written. */
export class MemoryLockoutIndex implements LockoutIndex {
  private readonly entries = new Map<string, Lockout>();

  constructor(private readonly max = LOCKOUT_INDEX_MAX) {}

  async add(lockout: Lockout): Promise<void> {
    this.entries.set(member(lockout.kind, lockout.key), lockout);
    if (this.entries.size <= this.max) return;
    const byEnd = [...this.entries.entries()].sort((a, b) => a[1].until - b[1].until);
    for (const [k] of byEnd.slice(0, this.entries.size - this.max)) this.entries.delete(k);
  }

  async list(now: number): Promise<Lockout[]> {
    for (const [k, l] of this.entries) if (l.until <= now) this.entries.delete(k);
    return [...this.entries.values()].sort((a, b) => b.until - a.until);
  }

  async remove(kind: LockoutKind, key: string): Promise<boolean> {
    return this.entries.delete(member(kind, key));
  }
}

/*
 * Redis (prefix P), shared by every instance:
 *   P rl:lockouts        ZSET  "<kind> <key>" scored by when it ends (ms)
 *   P rl:lockouts:info   HASH  "<kind> <key>" -> the Lockout as JSON
 * Ended entries are dropped when written or listed; past LOCKOUT_INDEX_MAX the soonest-ending go. Single-key
 * commands only (Redis Cluster). A lost write loses a line of the list, never a block.
 */
export class RedisLockoutIndex implements LockoutIndex {
  private readonly zset: string;
  private readonly info: string;

  constructor(
    private readonly redis: RedisClient,
    prefix: string,
    private readonly max = LOCKOUT_INDEX_MAX,
  ) {
    this.zset = `${prefix}rl:lockouts`;
    this.info = `${prefix}rl:lockouts:info`;
  }

  async add(lockout: Lockout): Promise<void> {
    // Redis down: the block is held by the insurance limiter; the list misses it rather than wait for a timeout.
    if (this.redis.status !== 'ready') return;
    const m = member(lockout.kind, lockout.key);
    await this.redis.hset(this.info, m, JSON.stringify(lockout));
    await this.redis.zadd(this.zset, lockout.until, m);
    const extra = (await this.redis.zcard(this.zset)) - this.max;
    if (extra > 0) await this.forget(await this.redis.zrange(this.zset, '0', String(extra - 1)));
  }

  async list(now: number): Promise<Lockout[]> {
    await this.forget(await this.redis.zrangebyscore(this.zset, '-inf', String(now)));
    const members = await this.redis.zrevrange(this.zset, '0', '-1');
    if (members.length === 0) return [];
    const values = await this.redis.hmget(this.info, ...members);
    return values.filter((v): v is string => v !== null).map((v) => JSON.parse(v) as Lockout);
  }

  async remove(kind: LockoutKind, key: string): Promise<boolean> {
    const m = member(kind, key);
    const removed = await this.redis.zrem(this.zset, m);
    await this.redis.hdel(this.info, m);
    return removed > 0;
  }

  private async forget(members: string[]): Promise<void> {
    if (members.length === 0) return;
    await this.redis.zrem(this.zset, ...members);
    await this.redis.hdel(this.info, ...members);
  }
}
