import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { Redis } from 'ioredis';
import { RedisAuditLog } from '../../src/credentials/redis-audit-log.js';
import { RedisCredentialStore } from '../../src/credentials/redis-credential-store.js';
import { RedisWebSessionStore } from '../../src/credentials/redis-web-session-store.js';
import { makeRecord } from '../helpers/records.js';
import { startRedis } from '../helpers/redis-server.js';
import { credentialStoreContract } from './credential-store.contract.js';

credentialStoreContract('redis', async () => {
  const server = await startRedis();
  const redis = new Redis(server.url);
  const clock = { now: Date.now() };
  return {
    store: new RedisCredentialStore(redis, server.prefix),
    audit: new RedisAuditLog(redis, server.prefix, 86_400_000, () => clock.now),
    clock,
    auditEntriesStored: () => redis.xlen(`${server.prefix}audit`),
    webSessions: new RedisWebSessionStore(redis, server.prefix, () => clock.now),
    close: async () => {
      redis.disconnect();
      await server.close();
    },
  };
});

describe('redis: store import against a revocation at the same moment', () => {
  it('reads again when a record is revoked between the merge and the write, so the revocation stays', async () => {
    const server = await startRedis();
    const redis = new Redis(server.url);
    try {
      const store = new RedisCredentialStore(redis, server.prefix);
      const record = makeRecord({ username: 'race@example.com' });
      await store.insert(record, { maxActivePerUser: 10, now: Date.now() });
      // The importing store's client: just before its first write script, another operator revokes the record.
      let raced = false;
      const racing = new Proxy(redis, {
        get(target, prop, receiver) {
          if (prop !== 'eval') return Reflect.get(target, prop, receiver);
          return async (...args: Parameters<Redis['eval']>) => {
            if (!raced && String(args[0]).includes("'-'")) {
              raced = true;
              await store.revoke(record.id, 1234);
            }
            return target.eval(...args);
          };
        },
      });
      const importing = new RedisCredentialStore(racing, server.prefix);
      assert.deepEqual(await importing.importRecords([{ ...record, name: 'From the file' }]), { added: 0, replaced: 0, keptRevoked: 1 });
      assert.ok(raced);
      const stored = (await store.get(record.id))!;
      assert.deepEqual([stored.name, stored.revokedAt], ['From the file', 1234]);
      assert.deepEqual(await store.revokeAll('race@example.com', 9999), [], 'not back in the active set');
    } finally {
      redis.disconnect();
      await server.close();
    }
  });
});
