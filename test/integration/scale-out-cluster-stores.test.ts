import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import { configSchema } from '../../src/config/config-schema.js';
import type { LoginAttemptKey } from '../../src/core/login-limiter.js';
import { createRedisClient, waitForRedisReady, type RedisClient } from '../../src/redis/redis-client-factory.js';
import { RedisAuditLog } from '../../src/credentials/redis-audit-log.js';
import { RedisCredentialStore } from '../../src/credentials/redis-credential-store.js';
import { RedisWebSessionStore } from '../../src/credentials/redis-web-session-store.js';
import { RedisRevocationFeed } from '../../src/credentials/redis-revocation-feed.js';
import { RedisTokenStateStore } from '../../src/credentials/redis-token-state-store.js';
import { FlexibleLoginLimiter } from '../../src/rate-limit/flexible-login-limiter.js';
import { openApp } from '../../src/app.js';
import { loadConfig } from '../../src/config/config-loader.js';
import { createLogger } from '../../src/observability/logger.js';
import { makeRecord } from '../helpers/records.js';
import { runCli } from '../helpers/run-cli.js';
import { makeTestConfig } from '../helpers/test-config.js';
import { startRedisCluster, type TestRedisCluster } from '../helpers/redis-cluster.js';
import { credentialStoreContract } from './credential-store.contract.js';
import { CLI_ACTOR } from '../../src/core/actor.js';

/*
 * Every Redis adapter on a real three-master Redis Cluster, through the production client factory
 * (`redis.cluster_nodes`). A multi-key command or script whose keys span slots fails there with CROSSSLOT, so
 * these tests are what holds the hash-tag layout true.
 */

let cluster: TestRedisCluster | undefined;
let starting: Promise<TestRedisCluster> | undefined;
const clients: RedisClient[] = [];

function sharedCluster(): Promise<TestRedisCluster> {
  starting ??= startRedisCluster().then((c) => (cluster = c));
  return starting;
}

async function client(): Promise<RedisClient> {
  const c = await sharedCluster();
  const redis = createRedisClient(configSchema.parse({ redis: { cluster_nodes: c.nodes } }).redis, 'passgate-test');
  redis.on('error', () => {});
  clients.push(redis);
  assert.ok(await waitForRedisReady(redis, 10_000), 'cluster client ready');
  return redis;
}

after(async () => {
  for (const redis of clients) redis.disconnect();
  await cluster?.close();
});

credentialStoreContract('redis cluster', async () => {
  const redis = await client();
  const prefix = `${cluster!.prefix}store:`;
  const clock = { now: Date.now() };
  return {
    store: new RedisCredentialStore(redis, prefix),
    audit: new RedisAuditLog(redis, prefix, 86_400_000, () => clock.now),
    clock,
    auditEntriesStored: () => redis.xlen(`${prefix}audit`),
    webSessions: new RedisWebSessionStore(redis, prefix, () => clock.now),
    close: async () => {},
  };
});

describe('redis cluster: the other shared state', () => {
  let a: RedisClient;
  let b: RedisClient;
  let prefix: string;
  before(async () => {
    a = await client();
    b = await client();
    prefix = `${cluster!.prefix}other:`;
  });

  it('spreads users over all three masters, and still lists, gets and revokes them all', async () => {
    const store = new RedisCredentialStore(a, prefix);
    const now = Date.now();
    const users = Array.from({ length: 12 }, (_, i) => `user${i}@example.com`);
    for (const username of users) assert.deepEqual(await store.insert(makeRecord({ username }), { maxActivePerUser: 10, now }), { ok: true });
    // The users' keys really live on different masters (else this test would prove nothing about slots).
    const ranges = (await a.call('CLUSTER', 'SLOTS')) as [number, number, [string, number]][];
    const owners = new Set<number>();
    for (const username of users) {
      const slot = Number(await a.call('CLUSTER', 'KEYSLOT', `${prefix}{u:${username}}:ids`));
      owners.add(ranges.find(([from, to]) => slot >= from && slot <= to)![2][1]);
    }
    assert.equal(owners.size, 3, `users on ${owners.size} master(s)`);
    const other = new RedisCredentialStore(b, prefix);
    const listed = await other.list();
    assert.deepEqual(new Set(listed.map((r) => r.username)), new Set(users));
    const revoked = await other.revokeAll('user3@example.com', now + 1);
    assert.equal(revoked.length, 1);
    assert.notEqual((await store.get(revoked[0]!.id))!.revokedAt, null);
  });

  it('one token refresh lock for both clients, state and lock under one tag', async () => {
    const one = new RedisTokenStateStore(a, prefix);
    const two = new RedisTokenStateStore(b, prefix);
    const release = await one.tryLock('mailbox:x@example.com', 5000);
    assert.ok(release);
    assert.equal(await two.tryLock('mailbox:x@example.com', 5000), null);
    await release();
    const again = await two.tryLock('mailbox:x@example.com', 5000);
    assert.ok(again);
    await again();
    const slot = (suffix: string) => a.call('CLUSTER', 'KEYSLOT', `${prefix}{t:mailbox:x@example.com}:${suffix}`);
    assert.equal(await slot('state'), await slot('lock'));
  });

  it('counts login failures of one pair as one across two clients', async () => {
    const rules = {
      trusted_networks: [],
      pair: { max_failures: 4, block_seconds: 60, max_block_seconds: 600 },
      ip: { burst_failures: 100, burst_seconds: 60, daily_failures: 1000, block_seconds: 3600 },
      user: { max_distinct_failures: 100, lock_seconds: 3600, known_ip_days: 20 },
    };
    const errors: unknown[] = [];
    const one = new FlexibleLoginLimiter(rules, { redis: a, keyPrefix: prefix }, (e) => errors.push(e));
    const two = new FlexibleLoginLimiter(rules, { redis: b, keyPrefix: prefix }, (e) => errors.push(e));
    const key: LoginAttemptKey = { username: 'brute@example.com', ip: '198.51.100.9', trusted: false };
    for (let i = 0; i < 3; i++) assert.equal((await (i % 2 ? two : one).recordFailure(key, `fp${i}`)).blocked, false);
    assert.equal((await two.recordFailure(key, 'fp3')).blocked, true);
    assert.equal((await one.check(key)).blocked, true);
    assert.deepEqual(errors, []);
  });

  it('carries a revocation from one client to a subscriber on another', async () => {
    const feed = new RedisRevocationFeed(b, prefix);
    const heard: string[][] = [];
    const unsubscribe = feed.subscribe((ids) => heard.push(ids));
    await feed.ready();
    const store = new RedisCredentialStore(a, prefix);
    const record = makeRecord({ username: 'feed@example.com' });
    await store.insert(record, { maxActivePerUser: 10, now: Date.now() });
    await store.revoke(record.id, Date.now());
    const deadline = Date.now() + 5000;
    while (heard.length === 0 && Date.now() < deadline) await new Promise((r) => setTimeout(r, 20));
    assert.deepEqual(heard, [[record.id]]);
    unsubscribe();
    await feed.close();
  });
});

describe('redis cluster: moving from the embedded store, and the CLI on a cluster', () => {
  it('exports from SQLite, imports into the cluster with the CLI, and lists and revokes there', async () => {
    const c = await sharedCluster();
    const sqlite = makeTestConfig({});
    const onCluster = makeTestConfig({ redis: { cluster_nodes: c.nodes, key_prefix: `${c.prefix}move:` } });
    const cli = (config: string, cwd: string, args: string[], input?: string) => runCli(['--config', config, ...args], { cwd, ...(input ? { input } : {}) });
    try {
      const embedded = await openApp(loadConfig({ path: sqlite.file, env: {}, cwd: sqlite.dir }).config, { logger: createLogger('silent') });
      const passwords: string[] = [];
      try {
        for (const username of ['one@example.com', 'two@example.com', 'three@example.com']) {
          passwords.push((await embedded.admin.appPasswords.create(CLI_ACTOR, { username, name: 'Device' })).password);
        }
      } finally {
        await embedded.close();
      }
      const exported = await cli(sqlite.file, sqlite.dir, ['store', 'export']);
      assert.equal(exported.code, 0, exported.stderr);
      const imported = await cli(onCluster.file, onCluster.dir, ['store', 'import'], exported.stdout);
      assert.equal(imported.code, 0, imported.stderr);
      assert.match(imported.stderr, /imported 3 app passwords \(3 new, 0 replaced, 0 kept revoked\)/);

      const listed = await cli(onCluster.file, onCluster.dir, ['app-password', 'list']);
      assert.equal(listed.code, 0, listed.stderr);
      for (const user of ['one@example.com', 'two@example.com', 'three@example.com']) assert.match(listed.stdout, new RegExp(user));
      const revoked = await cli(onCluster.file, onCluster.dir, ['app-password', 'revoke-all', '--user', 'two@example.com']);
      assert.equal(revoked.code, 0, revoked.stderr);

      const app = await openApp(loadConfig({ path: onCluster.file, env: {}, cwd: onCluster.dir }).config, { logger: createLogger('silent') });
      try {
        assert.equal((await app.verifier.verify('one@example.com', passwords[0]!)).ok, true, 'a moved password verifies on the cluster');
        const two = await app.verifier.verify('two@example.com', passwords[1]!);
        assert.equal(two.ok ? 'ok' : two.reason, 'revoked');
        const [entry] = await app.audit.query({ username: 'two@example.com', limit: 1 });
        assert.equal(entry?.action, 'app-password.revoke-all');
      } finally {
        await app.close();
      }
    } finally {
      sqlite.cleanup();
      onCluster.cleanup();
    }
  });
});
