import { RateLimiterMemory, RateLimiterRedis, RateLimiterRes, type RateLimiterAbstract } from 'rate-limiter-flexible';
import type { EventLogger } from '../core/event-logger.js';
import type { RequestBudget } from '../core/ports/request-budget.js';
import type { RedisClient } from '../redis/redis-client-factory.js';

/**
 * A request budget on rate-limiter-flexible: `P rl:graph:<key>`, `points` per `seconds`, a fixed window, on Redis
 * (every instance spends from one count) or in memory. A Redis that cannot be reached falls back to a memory count
 * (insurance) and is logged: mail keeps flowing, and Graph's own 429 is still honoured.
 */
export class FlexibleRequestBudget implements RequestBudget {
  private readonly limiter: RateLimiterAbstract;

  constructor(
    options: { points: number; seconds: number; name: string },
    backend: { redis: RedisClient; keyPrefix: string } | null,
    private readonly log: EventLogger,
  ) {
    const settings = { keyPrefix: `${backend?.keyPrefix ?? ''}rl:${options.name}`, points: options.points, duration: options.seconds };
    this.limiter =
      backend === null
        ? new RateLimiterMemory(settings)
        : new RateLimiterRedis({ ...settings, storeClient: backend.redis, rejectIfRedisNotReady: true, insuranceLimiter: new RateLimiterMemory(settings) });
  }

  async take(key: string): Promise<{ ok: true } | { ok: false; retryAfterMs: number }> {
    try {
      await this.limiter.consume(key);
      return { ok: true };
    } catch (error) {
      if (error instanceof RateLimiterRes) return { ok: false, retryAfterMs: Math.max(1000, error.msBeforeNext) };
      this.log.warn({ key, cause: (error as Error).message }, 'request budget unavailable');
      return { ok: true };
    }
  }
}
