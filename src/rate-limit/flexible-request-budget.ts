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
  /** Pauses in this instance's memory: without Redis, or while Redis cannot be reached. */
  private readonly pauses = new Map<string, number>();

  constructor(
    options: { points: number; seconds: number; name: string },
    backend: { redis: RedisClient; keyPrefix: string } | null,
    private readonly log: EventLogger,
  ) {
    this.redis = backend?.redis ?? null;
    this.pausePrefix = `${backend?.keyPrefix ?? ''}rl:${options.name}:pause:`;
    const settings = { keyPrefix: `${backend?.keyPrefix ?? ''}rl:${options.name}`, points: options.points, duration: options.seconds };
    this.limiter =
      backend === null
        ? new RateLimiterMemory(settings)
        : new RateLimiterRedis({ ...settings, storeClient: backend.redis, rejectIfRedisNotReady: true, insuranceLimiter: new RateLimiterMemory(settings) });
  }

  private readonly redis: RedisClient | null;
  private readonly pausePrefix: string;

  /** `P rl:<name>:pause:{<key>}`, expiring when the pause ends (Redis), or this instance's memory. */
  async pause(key: string, ms: number): Promise<void> {
    if (ms <= 0) return;
    const until = Date.now() + ms;
    this.pauses.set(key, Math.max(until, this.pauses.get(key) ?? 0));
    if (this.redis === null) return;
    await this.redis.set(`${this.pausePrefix}{${key}}`, '1', 'PX', ms).catch((error: Error) => this.log.warn({ key, cause: error.message }, 'request pause not shared'));
  }

  async paused(key: string): Promise<number> {
    const local = Math.max(0, (this.pauses.get(key) ?? 0) - Date.now());
    if (local === 0) this.pauses.delete(key);
    if (this.redis === null) return local;
    const shared = await this.redis.pttl(`${this.pausePrefix}{${key}}`).catch(() => -2);
    return Math.max(local, shared > 0 ? shared : 0);
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
