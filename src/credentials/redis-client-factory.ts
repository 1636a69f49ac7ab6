import { Cluster, Redis, type RedisOptions } from 'ioredis';
import type { RedisConfig } from '../config/config-schema.js';

export type RedisClient = Redis | Cluster;

/**
 * Builds the one shared ioredis client from `redis.*`: a URL, Sentinel, or Cluster. Commands fail after
 * `command_timeout_ms` instead of queueing forever, so a lost Redis becomes a temporary outcome quickly.
 */
export function createRedisClient(config: RedisConfig, name = 'passgate'): RedisClient {
  const common: RedisOptions = {
    connectionName: name,
    commandTimeout: config.command_timeout_ms,
    maxRetriesPerRequest: 1,
    // Reconnect forever with a capped backoff: Redis coming back must bring passgate back.
    retryStrategy: (times) => Math.min(times * 200, 2000),
    ...(config.password !== undefined ? { password: config.password } : {}),
  };
  if (config.cluster_nodes.length > 0) {
    const nodes = config.cluster_nodes.map((node) => {
      const [host, port] = node.split(':');
      return { host: host!, port: Number(port ?? 6379) };
    });
    return new Cluster(nodes, { redisOptions: common, clusterRetryStrategy: (times) => Math.min(times * 200, 2000) });
  }
  if (config.sentinels.length > 0) {
    return new Redis({ ...common, sentinels: config.sentinels, name: config.sentinel_name });
  }
  return new Redis(config.url!, common);
}

/**
 * What an operator must hear at start: evicted keys are lost app passwords, and a Redis without
 * persistence loses them all on restart.
 */
export async function checkRedisDurability(client: RedisClient): Promise<string[]> {
  const warnings: string[] = [];
  // A Cluster knows its masters only once connected: wait for that (a PING) before asking for them.
  await client.ping().catch(() => {});
  const node = client instanceof Cluster ? client.nodes('master')[0] : client;
  if (!node) return warnings;
  try {
    const policy = (await node.config('GET', 'maxmemory-policy')) as string[];
    if (policy[1] !== undefined && policy[1] !== 'noeviction') {
      warnings.push(`Redis maxmemory-policy is "${policy[1]}": set it to "noeviction", or Redis may evict app passwords`);
    }
    const aof = (await node.config('GET', 'appendonly')) as string[];
    const save = (await node.config('GET', 'save')) as string[];
    if (aof[1] !== 'yes' && (save[1] ?? '') === '') {
      warnings.push('Redis has no persistence (appendonly no, save ""): a Redis restart loses every app password');
    }
  } catch (cause) {
    warnings.push(`could not read Redis configuration (CONFIG GET refused?): ${(cause as Error).message}`);
  }
  return warnings;
}
