import { once } from 'node:events';
import { Cluster, Redis, type RedisOptions } from 'ioredis';
import type { RedisConfig } from '../config/config-schema.js';

export type RedisClient = Redis | Cluster;

/** Reconnect forever with a capped backoff: Redis coming back must bring passgate back. */
const backoff = (times: number) => Math.min(times * 200, 2000);

/** "host:port" or "[v6 address]:port" (the form of `redis.cluster_nodes`); null when it is neither. */
export function parseHostPort(node: string): { host: string; port: number } | null {
  const match = /^(?:\[([0-9a-fA-F:.]+)\]|([^\s:[\]]+)):(\d{1,5})$/.exec(node);
  const port = Number(match?.[3]);
  if (!match || port < 1 || port > 65535) return null;
  return { host: (match[1] ?? match[2])!, port };
}

/**
 * Builds the one shared ioredis client from `redis.*`: a URL, Sentinel, or Cluster. Commands fail after
 * `command_timeout_ms` instead of queueing forever, so a lost Redis becomes a temporary outcome quickly.
 */
export function createRedisClient(config: RedisConfig, name = 'passgate'): RedisClient {
  const common: RedisOptions = {
    connectionName: name,
    commandTimeout: config.command_timeout_ms,
    maxRetriesPerRequest: 1,
    ...(config.password !== undefined ? { password: config.password } : {}),
  };
  if (config.cluster_nodes.length > 0) {
    const nodes = config.cluster_nodes.map((node) => parseHostPort(node) ?? { host: node, port: 6379 });
    return new Cluster(nodes, {
      redisOptions: common,
      clusterRetryStrategy: backoff,
      // A Cluster queues commands sent while no node is reachable without any timeout (commandTimeout starts only
      // once a node takes the command): refuse them at once instead, so an unreachable cluster is a temporary
      // outcome, not a login that hangs. openApp waits for "ready" before serving (waitForRedisReady).
      enableOfflineQueue: false,
    });
  }
  if (config.sentinels.length > 0) {
    return new Redis({ ...common, retryStrategy: backoff, sentinels: config.sentinels, name: config.sentinel_name });
  }
  return new Redis(config.url!, { ...common, retryStrategy: backoff });
}

/**
 * Resolves when the client is ready, or after `timeoutMs` (false): a Redis down at start is not fatal, the
 * client keeps reconnecting and every command meanwhile fails as temporary.
 */
export async function waitForRedisReady(client: RedisClient, timeoutMs: number): Promise<boolean> {
  if (client.status === 'ready') return true;
  const abort = new AbortController();
  const timer = setTimeout(() => abort.abort(), timeoutMs);
  try {
    await once(client, 'ready', { signal: abort.signal });
    return true;
  } catch {
    return false;
  } finally {
    clearTimeout(timer);
  }
}

/**
 * What an operator must hear at start: evicted keys are lost app passwords, and a Redis without
 * persistence loses them all on restart. On a Cluster every master is asked (each holds its share of the keys).
 */
export async function checkRedisDurability(client: RedisClient): Promise<string[]> {
  // A Cluster knows its masters only once connected, and refuses commands before that (no offline queue).
  if (client instanceof Cluster) await waitForRedisReady(client, 5000);
  await client.ping().catch(() => {});
  const nodes = client instanceof Cluster ? client.nodes('master') : [client];
  const warnings: string[] = [];
  for (const node of nodes) {
    const where = client instanceof Cluster ? ` (cluster node ${node.options.host}:${node.options.port})` : '';
    try {
      const policy = (await node.config('GET', 'maxmemory-policy')) as string[];
      if (policy[1] !== undefined && policy[1] !== 'noeviction') {
        warnings.push(`Redis maxmemory-policy is "${policy[1]}"${where}: set it to "noeviction", or Redis may evict app passwords`);
      }
      const aof = (await node.config('GET', 'appendonly')) as string[];
      const save = (await node.config('GET', 'save')) as string[];
      if (aof[1] !== 'yes' && (save[1] ?? '') === '') {
        warnings.push(`Redis has no persistence (appendonly no, save "")${where}: a Redis restart loses every app password`);
      }
    } catch (cause) {
      warnings.push(`could not read Redis configuration${where} (CONFIG GET refused?): ${(cause as Error).message}`);
    }
  }
  return warnings;
}
