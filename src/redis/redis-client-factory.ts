import { once } from 'node:events';
import { readFileSync } from 'node:fs';
import type { ConnectionOptions } from 'node:tls';
import { Cluster, Redis, type ClusterOptions, type RedisOptions } from 'ioredis';
import { redisUsesTls, type RedisConfig } from '../config/config-schema.js';
import { clientSecureContext } from '../tls/client-secure-context.js';
import { GatewayError } from '../core/gateway-error.js';

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

/** What `createRedisClient` builds, as plain options (unit-tested without a Redis). */
export type RedisClientPlan =
  | { kind: 'standalone'; url: string; options: RedisOptions }
  | { kind: 'sentinel'; options: RedisOptions }
  | { kind: 'cluster'; nodes: { host: string; port: number }[]; options: ClusterOptions };

/**
 * Node TLS options for every Redis connection: with a ca_file, one shared context trusting Node's bundled roots plus
 * its CAs (ioredis copies these options into each tls.connect, so a reconnect or a new Cluster node builds no new
 * context); without, Node's default roots. And the name to check.
 */
function tlsOptions(config: RedisConfig, readFile: (path: string) => string): ConnectionOptions {
  let ca: string | undefined;
  try {
    ca = config.ca_file === null ? undefined : readFile(config.ca_file);
  } catch (cause) {
    throw new GatewayError('PG_CONFIG_INVALID', `redis.ca_file: cannot read ${config.ca_file}: ${(cause as Error).message}`, { cause });
  }
  return { ...(ca !== undefined ? { secureContext: clientSecureContext(ca) } : {}), ...(config.servername !== null ? { servername: config.servername } : {}) };
}

/**
 * `redis.url` without its user and password, which become options: ioredis reads a URL's credentials before the
 * options object and never lets the options replace them, so `redis://app@host` with `redis.password` would log
 * in as `app` with an empty password (ioredis parseOptions: lodash `defaults`, first value wins, and parseURL sets
 * password '' when the URL has only a user). Here `redis.username` and `redis.password` override the URL's.
 */
function splitCredentials(url: string): { url: string; username?: string; password?: string } {
  const parsed = new URL(url);
  const username = decodeURIComponent(parsed.username);
  const password = decodeURIComponent(parsed.password);
  parsed.username = '';
  parsed.password = '';
  return { url: parsed.href, ...(username !== '' ? { username } : {}), ...(password !== '' ? { password } : {}) };
}

/**
 * The ioredis options for `redis.*`: a URL, Sentinel, or Cluster, each with the same ACL user, password and TLS.
 * Commands fail after `command_timeout_ms` instead of queueing forever, so a lost Redis becomes a temporary outcome
 * quickly. `readFile` reads `redis.ca_file` (tests pass their own).
 */
export function redisClientPlan(
  config: RedisConfig,
  name = 'passgate',
  readFile: (path: string) => string = (path) => readFileSync(path, 'utf8'),
): RedisClientPlan {
  const fromUrl = config.url !== null && config.cluster_nodes.length === 0 && config.sentinels.length === 0 ? splitCredentials(config.url) : null;
  const username = config.username ?? fromUrl?.username;
  const password = config.password ?? fromUrl?.password;
  const tls = redisUsesTls(config) ? tlsOptions(config, readFile) : null;
  const common: RedisOptions = {
    connectionName: name,
    commandTimeout: config.command_timeout_ms,
    maxRetriesPerRequest: 1,
    ...(username !== undefined ? { username } : {}),
    ...(password !== undefined ? { password } : {}),
    ...(tls ? { tls } : {}),
  };
  if (config.cluster_nodes.length > 0) {
    const nodes = config.cluster_nodes.map((node) => parseHostPort(node) ?? { host: node, port: 6379 });
    return {
      kind: 'cluster',
      nodes,
      options: {
        redisOptions: common,
        clusterRetryStrategy: backoff,
        // A Cluster queues commands sent while no node is reachable without any timeout (commandTimeout starts only
        // once a node takes the command): refuse them at once instead, so an unreachable cluster is a temporary
        // outcome, not a login that hangs. openApp waits for "ready" before serving (waitForRedisReady).
        enableOfflineQueue: false,
        // With TLS, connect to a seed by the name given, not the address it resolves to, so its certificate is
        // checked against that name (ioredis resolves seed names first by default).
        ...(tls ? { dnsLookup: (address: string, callback: (error: null, address: string) => void) => callback(null, address) } : {}),
      },
    };
  }
  if (config.sentinels.length > 0) {
    return {
      kind: 'sentinel',
      options: {
        ...common,
        retryStrategy: backoff,
        sentinels: config.sentinels,
        name: config.sentinel_name,
        ...(config.sentinel_username !== null ? { sentinelUsername: config.sentinel_username } : {}),
        ...(config.sentinel_password !== undefined ? { sentinelPassword: config.sentinel_password } : {}),
        // TLS to the sentinels (sentinelTLS) and to the master they name (enableTLSForSentinelMode + tls).
        ...(tls ? { enableTLSForSentinelMode: true, sentinelTLS: tls } : {}),
      },
    };
  }
  return { kind: 'standalone', url: fromUrl!.url, options: { ...common, retryStrategy: backoff } };
}

/** Builds the one shared ioredis client from `redis.*` (see redisClientPlan). */
export function createRedisClient(config: RedisConfig, name = 'passgate'): RedisClient {
  const plan = redisClientPlan(config, name);
  if (plan.kind === 'cluster') return new Cluster(plan.nodes, plan.options);
  if (plan.kind === 'sentinel') return new Redis(plan.options);
  return new Redis(plan.url, plan.options);
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
