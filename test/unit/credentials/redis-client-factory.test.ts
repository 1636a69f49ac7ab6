import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { configSchema } from '../../../src/config/config-schema.js';
import { parseHostPort } from '../../../src/credentials/redis-client-factory.js';

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
