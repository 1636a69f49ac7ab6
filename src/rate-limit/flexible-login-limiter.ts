import { RateLimiterMemory, RateLimiterRedis, RateLimiterRes, type RateLimiterAbstract } from 'rate-limiter-flexible';
import type { RateLimitConfig } from '../config/config-schema.js';
import { GatewayError } from '../core/gateway-error.js';
import { lockoutKey, parseLockoutKey, type Lockout, type LockoutControl, type LockoutKind } from '../core/lockout-list.js';
import type { LimitScope, LimitVerdict, LoginAttemptKey, LoginLimiter } from '../core/login-limiter.js';
import { MemoryLockoutIndex, RedisLockoutIndex, type LockoutIndex } from './lockout-index.js';
import type { RedisClient } from '../redis/redis-client-factory.js';

/*
 * The rules of core/login-limiter.ts on rate-limiter-flexible (RLF) counters. Key layout (prefix P; RLF joins its
 * keyPrefix and the key with ":"). Keys that hold a username carry the hash tag {u:<username>}, as the credential
 * store does, so one user's state lives on one Redis Cluster slot.
 *   P rl:pair:fail:{u:<user>}:<ip>     failures since the last success or block (window: a day)
 *   P rl:pair:block:{u:<user>}:<ip>    present while the pair is blocked
 *   P rl:pair:strikes:{u:<user>}:<ip>  blocks so far; kept until a day after the last block ends
 *   P rl:ip:burst:<ip>, P rl:ip:day:<ip>
 *   P rl:user:seen:{u:<user>}:<fingerprint>  a wrong password already counted today
 *   P rl:user:distinct:{u:<user>}            distinct wrong passwords today
 *   P rl:user:known:{u:<user>}:<ip>          this user logged in from this ip recently (exempt from the user lock)
 *   P rl:fail:seen:{u:<user>}:<ip>:<fingerprint>  this failure was counted today (a repeat counts only towards ip burst)
 *   P rl:lockouts, P rl:lockouts:info        the blocks tripped, listed for the admin page (lockout-index.ts)
 */

const DAY_SECONDS = 86_400;
const OPEN: LimitVerdict = { blocked: false };

/** One rule's counter: the limiter every instance shares, and (with Redis) this instance's insurance copy. */
interface Counter {
  shared: RateLimiterAbstract;
  insurance: RateLimiterMemory | null;
  /** Consumed points above this mean blocked. */
  points: number;
}

interface CounterOptions {
  points: number;
  duration: number;
  blockDuration?: number;
}

export type LimiterErrorListener = (error: GatewayError) => void;

export class FlexibleLoginLimiter implements LoginLimiter, LockoutControl {
  private readonly index: LockoutIndex;
  private readonly pairFailures: Counter;
  private readonly pairBlocks: Counter;
  private readonly pairStrikes: Counter;
  private readonly ipBurst: Counter;
  private readonly ipDaily: Counter;
  private readonly userSeen: Counter;
  private readonly userDistinct: Counter;
  private readonly userKnown: Counter;
  private readonly failureSeen: Counter;

  /**
   * `backend` null keeps all state in this process. With Redis, state is shared by every instance, and each counter
   * has an in-memory insurance limiter that RLF switches to when a Redis command fails, so this instance keeps
   * enforcing the rules through an outage. The Redis client belongs to the caller: close() leaves it open.
   * `onError` hears state that could be neither read nor written even by the insurance (see check()).
   */
  constructor(
    private readonly config: RateLimitConfig,
    backend: { redis: RedisClient; keyPrefix: string } | null,
    private readonly onError: LimiterErrorListener = () => {},
  ) {
    const counter = (name: string, options: CounterOptions): Counter => {
      const keyPrefix = `${backend?.keyPrefix ?? ''}rl:${name}`;
      if (backend === null) return { shared: new RateLimiterMemory({ keyPrefix, ...options }), insurance: null, points: options.points };
      // RLF copies blockDuration onto the insurance, but not points or duration: give it the same ones.
      const insurance = new RateLimiterMemory({ keyPrefix, ...options });
      const shared = new RateLimiterRedis({
        storeClient: backend.redis,
        keyPrefix,
        // Go to the insurance at once while ioredis is reconnecting, instead of after command_timeout_ms.
        rejectIfRedisNotReady: true,
        insuranceLimiter: insurance,
        ...options,
      });
      return { shared, insurance, points: options.points };
    };
    this.index = backend === null ? new MemoryLockoutIndex() : new RedisLockoutIndex(backend.redis, backend.keyPrefix);
    const { pair, ip, user } = config;
    this.pairFailures = counter('pair:fail', { points: pair.max_failures, duration: DAY_SECONDS });
    // A block is written with block(): RLF stores points + 1 with the block's own expiry.
    this.pairBlocks = counter('pair:block', { points: 0, duration: pair.max_block_seconds });
    this.pairStrikes = counter('pair:strikes', { points: Number.MAX_SAFE_INTEGER, duration: DAY_SECONDS });
    // No blockDuration: more than burst_failures rejects until the window that counted them ends.
    this.ipBurst = counter('ip:burst', { points: ip.burst_failures, duration: ip.burst_seconds });
    // RLF blocks for blockDuration on the failure that first exceeds points; the count starts afresh after.
    this.ipDaily = counter('ip:day', { points: ip.daily_failures, duration: DAY_SECONDS, blockDuration: ip.block_seconds });
    this.userSeen = counter('user:seen', { points: 1, duration: DAY_SECONDS });
    this.userDistinct = counter('user:distinct', {
      points: user.max_distinct_failures,
      duration: DAY_SECONDS,
      blockDuration: user.lock_seconds,
    });
    this.failureSeen = counter('fail:seen', { points: 1, duration: DAY_SECONDS });
    this.userKnown = counter('user:known', { points: Number.MAX_SAFE_INTEGER, duration: Math.max(1, user.known_ip_days * DAY_SECONDS) });
  }

  /**
   * Reads, never counts. A read reports the stricter of the shared state and this instance's insurance copy, so a
   * block made during a Redis outage still holds here once Redis is back. A read that fails even so (RLF already
   * fell back to the insurance, so this is a bug, not an outage) counts as "not blocked" for that one rule and is
   * reported to onError; the other rules still apply. Failing closed instead would turn one broken counter into
   * refusing every login of every user, while guessing stays slow (argon2) and the other rules keep counting.
   */
  async check(key: LoginAttemptKey): Promise<LimitVerdict> {
    const reads = [this.read('pair', this.pairBlocks, pairKey(key))];
    if (!key.trusted) {
      reads.push(this.read('ip', this.ipBurst, key.ip), this.read('ip', this.ipDaily, key.ip));
      // The user lock never shuts a user out of a network it recently logged in from: an attacker elsewhere
      // cannot lock the user out of its own devices (design.md, brute-force practice).
      if (!(await this.isKnown(key))) reads.push(this.read('user', this.userDistinct, userKey(key.username)));
    }
    return strictest(await Promise.all(reads));
  }

  /**
   * Counts one failure against the pair always, and against the ip and the user only from untrusted networks (a
   * trusted client adds nothing to those counters). Never throws: a rule whose counter fails is reported to
   * onError and has no say in the verdict, which is the strictest block now in force for the next attempt.
   */
  async recordFailure(key: LoginAttemptKey, fingerprint: string): Promise<LimitVerdict> {
    // A failure repeated (same user, address and typed password) within a day counts once, except towards the ip
    // burst rule (each one still costs an argon2): repeating a guess teaches nothing, and a forgotten device repeating
    // a stale or revoked password must not block the user's working devices on the same address (issue 17).
    const seen = await consume(this.failureSeen.shared, `${pairKey(key)}:${fingerprint}`).catch((error: unknown) => void this.report(error));
    if (seen && seen.consumedPoints > 1) {
      if (key.trusted) return OPEN;
      return consume(this.ipBurst.shared, key.ip).then((burst) => verdict('ip', this.ipBurst, burst), (error: unknown) => this.report(error));
    }
    const rules = [this.countPairFailure(key)];
    if (!key.trusted) rules.push(this.countIpFailure(key.ip), this.countUserFailure(key.username, fingerprint));
    return strictest(await Promise.all(rules.map((rule) => rule.catch((error: unknown) => this.report(error)))));
  }

  /**
   * Clears the pair's failure count (its strikes and any block in force stay: a blocked pair is never verified),
   * and remembers the ip as one this user logs in from, for `user.known_ip_days`.
   */
  async recordSuccess(key: LoginAttemptKey): Promise<void> {
    const { shared, insurance } = this.pairFailures;
    const pair = pairKey(key);
    // Also the insurance copy: a count left there from an outage would otherwise survive this success.
    const clears = [shared, insurance].map((limiter) => limiter?.delete(pair).catch((error: unknown) => this.report(error)));
    const remember = this.config.user.known_ip_days > 0 ? consume(this.userKnown.shared, pair).catch((error: unknown) => this.report(error)) : null;
    await Promise.all([...clears, remember]);
  }

  private async isKnown(key: LoginAttemptKey): Promise<boolean> {
    if (this.config.user.known_ip_days === 0) return false;
    const state = await this.userKnown.shared.get(pairKey(key)).catch((error: unknown) => void this.report(error));
    return !!state && state.consumedPoints > 0 && state.msBeforeNext > 0;
  }

  /** Nothing to release: memory limiters hold only unref'd timers, and the Redis client is the caller's. */
  async close(): Promise<void> {}

  /** Pair: max_failures consecutive failures block for block_seconds × 2^(strikes − 1), at most max_block_seconds. */
  private async countPairFailure(key: LoginAttemptKey): Promise<LimitVerdict> {
    const pair = pairKey(key);
    const failures = await consume(this.pairFailures.shared, pair);
    // ">=", not "===": if a trip's writes were lost, the next failure trips again instead of never.
    if (failures.consumedPoints < this.config.pair.max_failures) return OPEN;
    const strikes = (await consume(this.pairStrikes.shared, pair)).consumedPoints;
    const { block_seconds, max_block_seconds } = this.config.pair;
    const seconds = Math.min(block_seconds * 2 ** (strikes - 1), max_block_seconds);
    await Promise.all([
      this.pairBlocks.shared.block(pair, seconds),
      // "Doubling with each further block within a day": a strike is remembered for a day after its block ends.
      this.pairStrikes.shared.set(pair, strikes, seconds + DAY_SECONDS),
      // The next max_failures after the block count afresh.
      this.pairFailures.shared.delete(pair),
    ]);
    await this.note('user-address', key.username, key.ip, seconds * 1000, failures.consumedPoints);
    return { blocked: true, scope: 'pair', retryAfterMs: seconds * 1000 };
  }

  /** Ip: more than burst_failures in the burst window, or more than daily_failures in a day. */
  private async countIpFailure(ip: string): Promise<LimitVerdict> {
    const [burst, daily] = await Promise.all([consume(this.ipBurst.shared, ip), consume(this.ipDaily.shared, ip)]);
    const result = strictest([verdict('ip', this.ipBurst, burst), verdict('ip', this.ipDaily, daily)]);
    if (result.blocked) await this.note('address', null, ip, result.retryAfterMs, Math.max(burst.consumedPoints, daily.consumedPoints));
    return result;
  }

  /** User: more than max_distinct_failures distinct wrong passwords in a day; a repeated one counts once. */
  private async countUserFailure(username: string, fingerprint: string): Promise<LimitVerdict> {
    const seen = await consume(this.userSeen.shared, `${userKey(username)}:${fingerprint}`);
    if (seen.consumedPoints > 1) return OPEN;
    const distinct = await consume(this.userDistinct.shared, userKey(username));
    const result = verdict('user', this.userDistinct, distinct);
    if (result.blocked) await this.note('user', username, null, result.retryAfterMs, distinct.consumedPoints);
    return result;
  }

  /** Lists the lockouts in force (from the index: the counters cannot be listed without a SCAN). */
  async lockouts(now: number): Promise<Lockout[]> {
    return this.index.list(now);
  }

  /**
   * Lifts a lockout: clears the counters that make it (with Redis, for every instance; an in-memory insurance copy
   * written by another instance during a Redis outage is that instance's own) and takes it off the list.
   */
  async unlock(kind: LockoutKind, key: string): Promise<boolean> {
    const parsed = parseLockoutKey(kind, key);
    if (parsed === null) return false;
    const { username, address } = parsed;
    const clear = (counter: Counter, k: string) => Promise.all([counter.shared.delete(k), counter.insurance?.delete(k)]);
    if (kind === 'user-address') {
      const pair = pairKey({ username: username!, ip: address!, trusted: false });
      await Promise.all([clear(this.pairBlocks, pair), clear(this.pairFailures, pair), clear(this.pairStrikes, pair)]);
    } else if (kind === 'address') {
      await Promise.all([clear(this.ipBurst, address!), clear(this.ipDaily, address!)]);
    } else {
      await clear(this.userDistinct, userKey(username!));
    }
    return this.index.remove(kind, lockoutKey(kind, username, address));
  }

  /** Writes a tripped block into the index; a failure there is reported and costs only a line of the list. */
  private async note(kind: LockoutKind, username: string | null, address: string | null, forMs: number, failures: number): Promise<void> {
    const lockout: Lockout = { kind, key: lockoutKey(kind, username, address), username, address, until: Date.now() + forMs, failures };
    await this.index.add(lockout).catch((error: unknown) => void this.report(error));
  }

  private async read(scope: LimitScope, counter: Counter, key: string): Promise<LimitVerdict> {
    const sources = counter.insurance === null ? [counter.shared] : [counter.shared, counter.insurance];
    const states = await Promise.all(sources.map((limiter) => limiter.get(key).catch((error: unknown) => void this.report(error))));
    return strictest(states.map((state) => (state ? verdict(scope, counter, state) : OPEN)));
  }

  private report(error: unknown): LimitVerdict {
    this.onError(
      new GatewayError('PG_STORE_UNAVAILABLE', 'rate-limit state unavailable even in memory (check redis.*); rule skipped', {
        cause: error,
      }),
    );
    return OPEN;
  }
}

function pairKey(key: LoginAttemptKey): string {
  return `${userKey(key.username)}:${key.ip}`;
}

function userKey(username: string): string {
  return `{u:${username}}`;
}

/** RLF rejects with a RateLimiterRes when points are exceeded (an answer) and with an Error when the store fails. */
async function consume(limiter: RateLimiterAbstract, key: string): Promise<RateLimiterRes> {
  try {
    return await limiter.consume(key);
  } catch (rejection) {
    if (rejection instanceof RateLimiterRes) return rejection;
    throw rejection;
  }
}

/** Blocked while more than `points` are consumed and the key has not expired (memory keys may outlive expiry a tick). */
function verdict(scope: LimitScope, counter: Counter, state: RateLimiterRes): LimitVerdict {
  const blocked = state.consumedPoints > counter.points && state.msBeforeNext > 0;
  return blocked ? { blocked: true, scope, retryAfterMs: state.msBeforeNext } : OPEN;
}

/** The block that lasts longest, so retryAfterMs is when the attempt may really proceed; ties go to the first. */
function strictest(verdicts: LimitVerdict[]): LimitVerdict {
  let result: LimitVerdict = OPEN;
  for (const v of verdicts) {
    if (v.blocked && (!result.blocked || v.retryAfterMs > result.retryAfterMs)) result = v;
  }
  return result;
}
