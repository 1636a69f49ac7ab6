import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { once } from 'node:events';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { createInterface } from 'node:readline';
import { after, before, describe, it } from 'node:test';
import { configSchema } from '../../src/config/config-schema.js';
import type { StoredTokenState, TokenStateStore } from '../../src/core/token-state-store.js';
import { createRedisClient, waitForRedisReady, type RedisClient } from '../../src/redis/redis-client-factory.js';
import { RedisTokenStateStore } from '../../src/credentials/redis-token-state-store.js';
import { openSqliteDatabase, type SqliteDatabase } from '../../src/credentials/sqlite-database.js';
import { SqliteTokenStateStore } from '../../src/credentials/sqlite-token-state-store.js';
import { startRedisCluster, type TestRedisCluster } from '../helpers/redis-cluster.js';
import { startRedis, type TestRedis } from '../helpers/redis-server.js';

const CHILD = join(import.meta.dirname, '../helpers/sqlite-put-if-child.ts');

const state = (key: string, over: Partial<StoredTokenState> = {}): StoredTokenState => ({
  key,
  sealedRefreshToken: null,
  sealedAccessToken: null,
  accessExpiresAt: null,
  accessObtainedAt: null,
  status: 'ok',
  lastSuccessAt: null,
  failingSince: null,
  failures: 0,
  nextAttemptAt: null,
  lastError: null,
  updatedAt: 1,
  ...over,
});

/** putIf, the compare-and-set the token provider's failure writes and invalidations rely on, on every store. */
function putIfContract(name: string, open: () => Promise<{ store: TokenStateStore; close(): Promise<void> }>): void {
  describe(`${name}: putIf (compare-and-set on one field)`, () => {
    let store: TokenStateStore;
    let close: () => Promise<void>;
    before(async () => {
      ({ store, close } = await open());
    });
    after(async () => close());

    it('writes while the field still holds the expected value, and not after someone replaced it', async () => {
      const key = 'mailbox:cas@example.com';
      await store.put(state(key, { sealedRefreshToken: 'v1.old' }));
      // An operator's `oauth connect` replaces the refresh token...
      await store.put(state(key, { sealedRefreshToken: 'v1.new', updatedAt: 2 }));
      // ...so a failure write based on the old one is refused and the new one stays.
      assert.equal(await store.putIf(state(key, { sealedRefreshToken: null, status: 'needs-connect', updatedAt: 3 }), 'sealedRefreshToken', 'v1.old'), false);
      assert.deepEqual([(await store.get(key))!.sealedRefreshToken, (await store.get(key))!.status], ['v1.new', 'ok']);
      // Based on the current one, it writes.
      assert.equal(await store.putIf(state(key, { sealedRefreshToken: null, status: 'needs-connect', updatedAt: 4 }), 'sealedRefreshToken', 'v1.new'), true);
      assert.deepEqual([(await store.get(key))!.sealedRefreshToken, (await store.get(key))!.status], [null, 'needs-connect']);
    });

    it('treats null and a missing state alike, and compares the access token field too', async () => {
      const key = 'app';
      await store.delete(key);
      assert.equal(await store.putIf(state(key, { sealedAccessToken: 'v1.a' }), 'sealedAccessToken', 'v1.x'), false, 'nothing stored, a value expected');
      assert.equal(await store.get(key), null);
      assert.equal(await store.putIf(state(key, { sealedAccessToken: 'v1.a' }), 'sealedAccessToken', null), true, 'nothing stored, null expected');
      assert.ok((await store.list()).some((s) => s.key === key), 'listed like a put');
      assert.equal(await store.putIf(state(key, { sealedAccessToken: 'v1.b' }), 'sealedAccessToken', null), false, 'a value is stored, null expected');
      assert.equal(await store.putIf(state(key, { sealedAccessToken: null }), 'sealedAccessToken', 'v1.a'), true);
      assert.equal((await store.get(key))!.sealedAccessToken, null);
      assert.equal(await store.putIf(state(key, { sealedAccessToken: 'v1.c' }), 'sealedAccessToken', null), true, 'a stored null matches null');
    });

    it('lets exactly one of many concurrent writers based on the same value win', async () => {
      const key = 'mailbox:race@example.com';
      await store.put(state(key, { sealedRefreshToken: 'v1.base' }));
      const results = await Promise.all(
        Array.from({ length: 20 }, (_, i) => store.putIf(state(key, { sealedRefreshToken: `v1.w${i}` }), 'sealedRefreshToken', 'v1.base')),
      );
      assert.equal(results.filter(Boolean).length, 1);
      const winner = results.indexOf(true);
      assert.equal((await store.get(key))!.sealedRefreshToken, `v1.w${winner}`);
    });
  });
}

describe('sqlite: putIf from separate processes on one file (instances sharing the embedded store)', () => {
  it('lets exactly one of eight processes based on the same value win', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'passgate-cas-'));
    const file = join(dir, 'passgate.db');
    const key = 'mailbox:processes@example.com';
    const db = openSqliteDatabase(file);
    try {
      await new SqliteTokenStateStore(db).put(state(key, { sealedRefreshToken: 'v1.base' }));
      const children = Array.from({ length: 8 }, (_, i) =>
        spawn(process.execPath, ['--import', 'tsx', CHILD, file, key, `v1.p${i}`, 'v1.base'], {
          stdio: ['pipe', 'pipe', 'inherit'],
          env: { PATH: process.env['PATH'] ?? '' }, // not NODE_TEST_CONTEXT: the child is a program, not a test file
        }),
      );
      const lines = children.map((child) => createInterface({ input: child.stdout! })[Symbol.asyncIterator]());
      for (const line of lines) assert.equal((await line.next()).value, 'ready');
      for (const child of children) child.stdin!.end('go\n'); // all opened: they write at the same moment
      const results = await Promise.all(lines.map(async (line) => (await line.next()).value as string));
      await Promise.all(children.map((child) => (child.exitCode === null ? once(child, 'exit') : null)));
      assert.equal(results.filter((r) => r === 'won').length, 1, results.join(' '));
      assert.equal(results.filter((r) => r === 'lost').length, 7);
      const winner = results.indexOf('won');
      assert.equal((await new SqliteTokenStateStore(db).get(key))!.sealedRefreshToken, `v1.p${winner}`);
    } finally {
      db.close();
      rmSync(dir, { recursive: true, force: true });
    }
  });
});

putIfContract('sqlite', async () => {
  const db: SqliteDatabase = openSqliteDatabase(':memory:');
  return { store: new SqliteTokenStateStore(db), close: async () => void db.close() };
});

let redis: TestRedis | undefined;
putIfContract('redis', async () => {
  redis = await startRedis();
  const client = createRedisClient(configSchema.parse({ redis: { url: redis.url } }).redis, 'passgate-test');
  client.on('error', () => {});
  assert.ok(await waitForRedisReady(client, 10_000));
  return {
    store: new RedisTokenStateStore(client, `${redis.prefix}cas:`),
    close: async () => {
      client.disconnect();
      await redis!.close();
    },
  };
});

// One key per script (the state), so it runs on a Redis Cluster without CROSSSLOT.
let cluster: TestRedisCluster | undefined;
putIfContract('redis cluster', async () => {
  cluster = await startRedisCluster();
  const client: RedisClient = createRedisClient(configSchema.parse({ redis: { cluster_nodes: cluster.nodes } }).redis, 'passgate-test');
  client.on('error', () => {});
  assert.ok(await waitForRedisReady(client, 10_000));
  return {
    store: new RedisTokenStateStore(client, `${cluster.prefix}cas:`),
    close: async () => {
      client.disconnect();
      await cluster!.close();
    },
  };
});
