import { randomBytes } from 'node:crypto';
import { GatewayError, isGatewayError } from '../core/gateway-error.js';
import type { StoredTokenState, TokenStateStore } from '../core/token-state-store.js';
import type { RedisClient } from '../redis/redis-client-factory.js';

const RELEASE = `if redis.call('GET', KEYS[1]) == ARGV[1] then return redis.call('DEL', KEYS[1]) end return 0`;

/*
 * Compare-and-set of one key's state (KEYS[1]): ARGV[1] field, ARGV[2] '1' when a value is expected ('0': null or
 * absent), ARGV[3] that value, ARGV[4] the new JSON. One key, so one Cluster slot.
 */
const PUT_IF = `
local current = redis.call('GET', KEYS[1])
local value = nil
if current then
  value = cjson.decode(current)[ARGV[1]]
  if value == cjson.null then value = nil end
end
if ARGV[2] == '1' then
  if value ~= ARGV[3] then return 0 end
elseif value ~= nil then
  return 0
end
redis.call('SET', KEYS[1], ARGV[4])
return 1`;

/*
 * Keys (prefix P): P{t:<key>}:state STRING (JSON of the sealed state), P{t:<key>}:lock STRING (owner, PX ttl),
 * Ptokens SET of keys. State and lock of one key share a hash tag (one Cluster slot).
 */
export class RedisTokenStateStore implements TokenStateStore {
  constructor(
    private readonly redis: RedisClient,
    private readonly prefix: string,
  ) {}

  private k(key: string, suffix: string): string {
    return `${this.prefix}{t:${key}}:${suffix}`;
  }

  private async run<T>(operation: string, fn: () => Promise<T>): Promise<T> {
    try {
      return await fn();
    } catch (cause) {
      if (isGatewayError(cause)) throw cause;
      throw new GatewayError('PG_STORE_UNAVAILABLE', `redis token store: ${operation} failed: ${(cause as Error).message}`, { cause });
    }
  }

  get(key: string): Promise<StoredTokenState | null> {
    return this.run('get', async () => {
      const json = await this.redis.get(this.k(key, 'state'));
      return json === null ? null : (JSON.parse(json) as StoredTokenState);
    });
  }

  put(state: StoredTokenState): Promise<void> {
    return this.run('put', async () => {
      await this.redis.set(this.k(state.key, 'state'), JSON.stringify(state));
      await this.redis.sadd(`${this.prefix}tokens`, state.key);
    });
  }

  putIf(state: StoredTokenState, field: 'sealedRefreshToken' | 'sealedAccessToken', expected: string | null): Promise<boolean> {
    return this.run('put', async () => {
      const args = [field, expected === null ? '0' : '1', expected ?? '', JSON.stringify(state)];
      if ((await this.redis.eval(PUT_IF, 1, this.k(state.key, 'state'), ...args)) !== 1) return false;
      await this.redis.sadd(`${this.prefix}tokens`, state.key);
      return true;
    });
  }

  list(): Promise<StoredTokenState[]> {
    return this.run('list', async () => {
      const keys = (await this.redis.smembers(`${this.prefix}tokens`)).sort();
      const out: StoredTokenState[] = [];
      for (const key of keys) {
        const state = await this.get(key);
        if (state) out.push(state);
      }
      return out;
    });
  }

  delete(key: string): Promise<void> {
    return this.run('delete', async () => {
      await this.redis.del(this.k(key, 'state'));
      await this.redis.srem(`${this.prefix}tokens`, key);
    });
  }

  tryLock(key: string, ttlMs: number): Promise<(() => Promise<void>) | null> {
    return this.run('lock', async () => {
      const owner = randomBytes(12).toString('base64url');
      const lockKey = this.k(key, 'lock');
      if ((await this.redis.set(lockKey, owner, 'PX', ttlMs, 'NX')) !== 'OK') return null;
      return async () => {
        // Only the owner releases: a lock that expired and was retaken by another instance stays theirs.
        await this.redis.eval(RELEASE, 1, lockKey, owner).catch(() => {});
      };
    });
  }
}
