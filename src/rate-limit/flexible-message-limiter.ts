import { RateLimiterMemory, RateLimiterRedis, type RateLimiterAbstract } from 'rate-limiter-flexible';
import type { MessagePolicy } from '../core/app-password-record.js';
import type { EventLogger } from '../core/event-logger.js';
import type { MessageLimiter } from '../core/message-limiter.js';
import type { RedisClient } from '../redis/redis-client-factory.js';

const HOUR = 3600;
const DAY = 86_400;

/**
 * Message counts per app password on rate-limiter-flexible: `P rl:msg:hour:<id>` and `P rl:msg:day:<id>`, fixed
 * windows. Each password has its own limits, so the counters never block by themselves (unbounded points); the
 * limit is compared here. A counter that cannot be read lets the message through and is logged: a lost counter
 * must not stop a printer's mail, and the login limits still stand.
 */
export class FlexibleMessageLimiter implements MessageLimiter {
  private readonly hour: RateLimiterAbstract;
  private readonly day: RateLimiterAbstract;

  constructor(
    backend: { redis: RedisClient; keyPrefix: string } | null,
    private readonly log: EventLogger,
  ) {
    const make = (name: string, duration: number): RateLimiterAbstract => {
      const options = { keyPrefix: `${backend?.keyPrefix ?? ''}rl:msg:${name}`, points: Number.MAX_SAFE_INTEGER, duration };
      if (backend === null) return new RateLimiterMemory(options);
      return new RateLimiterRedis({ ...options, storeClient: backend.redis, rejectIfRedisNotReady: true, insuranceLimiter: new RateLimiterMemory(options) });
    };
    this.hour = make('hour', HOUR);
    this.day = make('day', DAY);
  }

  async allows(id: string, policy: MessagePolicy): Promise<boolean> {
    const within = async (limiter: RateLimiterAbstract, limit: number | null) => {
      if (limit === null) return true;
      const state = await limiter.get(id).catch((error: Error) => {
        this.log.warn({ appPasswordId: id, cause: error.message }, 'message counter unavailable');
        return null;
      });
      return !state || state.msBeforeNext <= 0 || state.consumedPoints < limit;
    };
    const [hour, day] = await Promise.all([within(this.hour, policy.maxMessagesPerHour), within(this.day, policy.maxMessagesPerDay)]);
    return hour && day;
  }

  async count(id: string, policy: MessagePolicy): Promise<void> {
    const counters: Promise<unknown>[] = [];
    if (policy.maxMessagesPerHour !== null) counters.push(this.hour.consume(id));
    if (policy.maxMessagesPerDay !== null) counters.push(this.day.consume(id));
    await Promise.all(counters.map((c) => c.catch((error: Error) => this.log.warn({ appPasswordId: id, cause: String(error?.message ?? error) }, 'message counter unavailable'))));
  }
}
