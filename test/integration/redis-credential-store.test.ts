import { Redis } from 'ioredis';
import { RedisAuditLog } from '../../src/credentials/redis-audit-log.js';
import { RedisCredentialStore } from '../../src/credentials/redis-credential-store.js';
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
    close: async () => {
      redis.disconnect();
      await server.close();
    },
  };
});
