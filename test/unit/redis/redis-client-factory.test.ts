import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { configSchema } from '../../../src/config/config-schema.js';
import type { RedisOptions } from 'ioredis';
import { parseHostPort, redisClientPlan, type RedisClientPlan } from '../../../src/redis/redis-client-factory.js';
import { clientSecureContext } from '../../../src/tls/client-secure-context.js';

describe('redis.* for Sentinel and Cluster', () => {
  it('reads cluster seed nodes as host:port, IPv6 in brackets', () => {
    assert.deepEqual(parseHostPort('10.0.0.5:6379'), { host: '10.0.0.5', port: 6379 });
    assert.deepEqual(parseHostPort('redis-a.internal:7000'), { host: 'redis-a.internal', port: 7000 });
    assert.deepEqual(parseHostPort('[fd00::5]:6379'), { host: 'fd00::5', port: 6379 });
    for (const bad of ['10.0.0.5', 'fd00::5:6379', '[fd00::5]', 'host:0', 'host:70000', ' host:1']) assert.equal(parseHostPort(bad), null, bad);
  });

  it('refuses a malformed seed node and more than one way to reach Redis, naming the key', () => {
    const issues = (redis: Record<string, unknown>) => {
      const result = configSchema.safeParse({ redis });
      return result.success ? [] : result.error.issues.map((i) => `${i.path.join('.')}: ${i.message}`);
    };
    assert.deepEqual(issues({ cluster_nodes: ['10.0.0.5'] }), ['redis.cluster_nodes.0: expected host:port, such as 10.0.0.5:6379 or [fd00::5]:6379']);
    assert.deepEqual(issues({ url: 'redis://127.0.0.1:6379', sentinels: [{ host: '127.0.0.1', port: 26379 }] }), [
      'redis: set one of url, sentinels or cluster_nodes, not several',
    ]);
    assert.deepEqual(issues({ cluster_nodes: ['[fd00::5]:6379', 'redis-b.internal:6379'] }), []);
  });
});

describe('redis.* to ioredis options (ACL user, password, TLS) in every topology', () => {
  const redis = (over: Record<string, unknown>) => configSchema.parse({ redis: over }).redis;
  const files = (path: string) => {
    if (path === '/etc/passgate/redis-ca.pem') return 'PEM CA';
    throw new Error(`ENOENT: no such file or directory, open '${path}'`);
  };
  const tls = { ca_file: '/etc/passgate/redis-ca.pem', servername: 'redis.internal' };
  /** The options of a standalone or Sentinel plan. */
  const single = (plan: RedisClientPlan): RedisOptions => {
    assert.notEqual(plan.kind, 'cluster');
    return (plan as Exclude<RedisClientPlan, { kind: 'cluster' }>).options;
  };
  const issues = (over: Record<string, unknown>) => {
    const result = configSchema.safeParse({ redis: over });
    return result.success ? [] : result.error.issues.map((i) => `${i.path.join('.')}: ${i.message}`);
  };

  it('standalone: a url user keeps redis.password (ioredis alone would send an empty one), and the keys override the url', () => {
    const plan = redisClientPlan(redis({ url: 'redis://app@10.0.0.5:6379/2', password: 's3cret' }), 'passgate', files);
    assert.equal(plan.kind, 'standalone');
    if (plan.kind !== 'standalone') return;
    assert.equal(plan.url, 'redis://10.0.0.5:6379/2', 'no credentials left in the url for ioredis to prefer');
    assert.equal(plan.options.username, 'app');
    assert.equal(plan.options.password, 's3cret');
    assert.equal(plan.options.tls, undefined);

    const both = single(redisClientPlan(redis({ url: 'redis://olduser:oldpass@h:6379', username: 'app', password: 'new' }), 'passgate', files));
    assert.deepEqual([both.username, both.password], ['app', 'new']);
    const fromUrl = single(redisClientPlan(redis({ url: 'redis://:p%40ss@h:6379' }), 'passgate', files));
    assert.deepEqual([fromUrl.username, fromUrl.password], [undefined, 'p@ss'], 'percent-decoded, no empty user');
  });

  it('standalone TLS: rediss:// or redis.tls, with the CA bundle read and the server name', () => {
    const implied = single(redisClientPlan(redis({ url: 'rediss://h:6380' }), 'passgate', files));
    assert.deepEqual(implied.tls, {}, 'the system CAs');
    const plan = single(redisClientPlan(redis({ url: 'redis://h:6380', tls: true, username: 'app', password: 'pw', ...tls }), 'passgate', files));
    assert.deepEqual(plan.tls, { secureContext: clientSecureContext('PEM CA'), servername: 'redis.internal' });
    // The one shared context (deepEqual cannot tell two contexts apart: they have no enumerable properties).
    assert.strictEqual(plan.tls!.secureContext, clientSecureContext('PEM CA'));
    assert.deepEqual([plan.username, plan.password], ['app', 'pw']);
  });

  it('cluster: every node gets the user, password and TLS (redisOptions), seeds connected by name under TLS', () => {
    const plan = redisClientPlan(redis({ cluster_nodes: ['redis-a.internal:6379'], tls: true, username: 'app', password: 'pw', ...tls }), 'passgate', files);
    assert.equal(plan.kind, 'cluster');
    if (plan.kind !== 'cluster') return;
    assert.deepEqual(plan.nodes, [{ host: 'redis-a.internal', port: 6379 }]);
    const node = plan.options.redisOptions!;
    assert.deepEqual([node.username, node.password, node.tls], ['app', 'pw', { secureContext: clientSecureContext('PEM CA'), servername: 'redis.internal' }]);
    assert.strictEqual(node.tls!.secureContext, clientSecureContext('PEM CA'));
    let looked: string | undefined;
    plan.options.dnsLookup!('redis-a.internal', (_e, address) => (looked = address));
    assert.equal(looked, 'redis-a.internal');
    assert.equal(plan.options.enableOfflineQueue, false);

    const plain = redisClientPlan(redis({ cluster_nodes: ['10.0.0.5:6379'], password: 'pw' }), 'passgate', files);
    assert.equal(plain.kind === 'cluster' && plain.options.redisOptions!.tls, undefined);
    assert.equal(plain.kind === 'cluster' && plain.options.dnsLookup, undefined);
  });

  it('sentinel: the master gets user, password and TLS; the sentinels their own user and password, and TLS', () => {
    const sentinels = [{ host: '10.0.0.11', port: 26379 }];
    const plan = redisClientPlan(
      redis({ sentinels, sentinel_name: 'main', tls: true, username: 'app', password: 'pw', sentinel_username: 'watcher', sentinel_password: 'spw', ...tls }),
      'passgate',
      files,
    );
    assert.equal(plan.kind, 'sentinel');
    const o = single(plan);
    assert.deepEqual([o.name, o.username, o.password, o.sentinelUsername, o.sentinelPassword], ['main', 'app', 'pw', 'watcher', 'spw']);
    assert.deepEqual(o.sentinels, sentinels);
    assert.equal(o.enableTLSForSentinelMode, true);
    assert.deepEqual(o.tls, { secureContext: clientSecureContext('PEM CA'), servername: 'redis.internal' });
    assert.deepEqual(o.sentinelTLS, { secureContext: clientSecureContext('PEM CA'), servername: 'redis.internal' });
    assert.strictEqual(o.tls!.secureContext, clientSecureContext('PEM CA'));
    assert.strictEqual(o.sentinelTLS!.secureContext, o.tls!.secureContext);

    const plain = single(redisClientPlan(redis({ sentinels }), 'passgate', files));
    assert.deepEqual([plain.tls, plain.sentinelTLS, plain.enableTLSForSentinelMode, plain.sentinelPassword], [undefined, undefined, undefined, undefined]);
  });

  it('names the key: an unreadable ca_file, TLS options without TLS, sentinel credentials without sentinels', () => {
    assert.throws(() => redisClientPlan(redis({ url: 'rediss://h:6380', ca_file: '/nope/ca.pem' }), 'passgate', files), /^GatewayError: redis\.ca_file: cannot read \/nope\/ca\.pem: ENOENT/);
    assert.deepEqual(issues({ url: 'redis://h:6379', ca_file: 'ca.pem', servername: 'x' }), [
      'redis.ca_file: only with TLS: set redis.tls: true (or use a rediss:// url)',
      'redis.servername: only with TLS: set redis.tls: true (or use a rediss:// url)',
    ]);
    assert.deepEqual(issues({ url: 'redis://h:6379', sentinel_username: 'w', sentinel_password: 'p' }), [
      'redis.sentinel_username: only with sentinels',
      'redis.sentinel_password: only with sentinels',
    ]);
    assert.deepEqual(issues({ url: 'rediss://h:6380', ca_file: 'ca.pem', servername: 'x', username: 'app' }), []);
    assert.deepEqual(issues({ username: '' }).length, 1);
  });
});
