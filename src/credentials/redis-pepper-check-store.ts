import type { PepperCheckStore } from '../core/pepper-check-store.js';
import type { RedisClient } from '../redis/redis-client-factory.js';

/** The pepper check in Redis: one key, `<prefix>meta:pepper-check`, written once (SET NX) by the first instance. */
export class RedisPepperCheckStore implements PepperCheckStore {
  private readonly key: string;

  constructor(
    private readonly redis: RedisClient,
    keyPrefix: string,
  ) {
    this.key = `${keyPrefix}meta:pepper-check`;
  }

  read(): Promise<string | null> {
    return this.redis.get(this.key);
  }

  async recordIfAbsent(check: string): Promise<string> {
    await this.redis.set(this.key, check, 'NX');
    return (await this.redis.get(this.key))!;
  }
}
