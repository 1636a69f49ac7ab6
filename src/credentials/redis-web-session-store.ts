import type { Clock } from '../core/clock.js';
import { GatewayError } from '../core/gateway-error.js';
import { webSessionKey, type WebSession, type WebSessionStore } from '../core/web-session-store.js';
import type { RedisClient } from '../redis/redis-client-factory.js';

/*
 * Key layout (prefix P):
 *   P ws:<sha256 of the id>   STRING  {"expiresAt": ms, "session": {...}}, with a TTL
 *   P wsu:<username>          SET     the user's session keys (signing out everywhere), kept as long as the longest
 * Single-key commands only, so it works on Redis Cluster without hash tags. The expiry is also checked on read
 * against the clock, so a session ends at the same moment on every store (and in tests without waiting).
 */

interface Stored {
  expiresAt: number;
  session: WebSession;
}

/** Portal sessions in Redis, shared by every instance. */
export class RedisWebSessionStore implements WebSessionStore {
  constructor(
    private readonly redis: RedisClient,
    private readonly prefix: string,
    private readonly clock: Clock,
  ) {}

  private key(id: string): string {
    return `${this.prefix}ws:${webSessionKey(id)}`;
  }

  private userKey(username: string): string {
    return `${this.prefix}wsu:${username.trim().toLowerCase()}`;
  }

  async get(id: string): Promise<WebSession | null> {
    return this.run('get', async () => {
      const raw = await this.redis.get(this.key(id));
      if (raw === null) return null;
      const stored = JSON.parse(raw) as Stored;
      return stored.expiresAt > this.clock() ? stored.session : null;
    });
  }

  async set(id: string, session: WebSession, ttlMs: number): Promise<void> {
    return this.run('set', async () => {
      const key = this.key(id);
      const ttl = Math.max(1, Math.ceil(ttlMs));
      const userKey = this.userKey(session.username);
      await this.redis.set(key, JSON.stringify({ expiresAt: this.clock() + ttlMs, session } satisfies Stored), 'PX', ttl);
      await this.redis.sadd(userKey, key);
      // The index lives as long as its longest session: never shortened (PTTL, not PEXPIRE GT, which needs Redis 7).
      const left = await this.redis.pttl(userKey);
      if (left < ttl) await this.redis.pexpire(userKey, ttl);
    });
  }

  async destroy(id: string): Promise<void> {
    return this.run('destroy', async () => {
      const key = this.key(id);
      const raw = await this.redis.get(key);
      await this.redis.del(key);
      if (raw !== null) await this.redis.srem(this.userKey((JSON.parse(raw) as Stored).session.username), key);
    });
  }

  async destroyAllFor(username: string): Promise<number> {
    return this.run('destroy-all', async () => {
      const userKey = this.userKey(username);
      const keys = await this.redis.smembers(userKey);
      let gone = 0;
      // One DEL per key: on a Cluster the keys live in different slots.
      for (const key of keys) gone += await this.redis.del(key);
      await this.redis.del(userKey);
      return gone;
    });
  }

  private async run<T>(operation: string, fn: () => Promise<T>): Promise<T> {
    try {
      return await fn();
    } catch (cause) {
      throw new GatewayError('PG_STORE_UNAVAILABLE', `redis web sessions: ${operation} failed: ${(cause as Error).message}`, { cause });
    }
  }
}
