import { Cluster } from 'ioredis';
import type { RedisConfig } from '../config/config-schema.js';
import { createRedisClient, type RedisClient } from '../redis/redis-client-factory.js';
import { fail, pass, warn, type CheckResult } from './doctor-report.js';

type Node = Exclude<RedisClient, Cluster>;

/** `INFO <section>` as a map of `field: value`. */
async function info(node: Node, section: string): Promise<Map<string, string>> {
  const text = await node.info(section);
  return new Map(
    text
      .split(/\r?\n/)
      .filter((line) => line.includes(':') && !line.startsWith('#'))
      .map((line) => [line.slice(0, line.indexOf(':')), line.slice(line.indexOf(':') + 1).trim()]),
  );
}

async function configGet(node: Node, name: string): Promise<string> {
  const reply = (await node.config('GET', name)) as string[];
  return reply[1] ?? '';
}

const EVICTION_HINT =
  'With any other policy Redis deletes keys when memory fills up: app passwords, refresh tokens and rate-limit ' +
  'counters vanish silently. Set maxmemory-policy noeviction (CONFIG SET and redis.conf, or the managed service\'s parameter group).';
const PERSISTENCE_HINT = 'A Redis restart then loses every app password and mailbox connection. Turn on AOF (appendonly yes) or RDB snapshots (save).';

/** What to check for the error a Redis connection ended with (never the password itself). */
export function redisFailureHint(message: string): string {
  if (/WRONGPASS|invalid username-password/i.test(message) && /sentinel/i.test(message)) {
    return 'A sentinel refused the user and password: check redis.sentinel_username and redis.sentinel_password (the master\'s are redis.username and redis.password).';
  }
  if (/WRONGPASS|invalid username-password/i.test(message)) {
    return 'Redis refused the user and password: check redis.username and redis.password (or the user and password in redis.url), and that the ACL user is enabled (ACL LIST).';
  }
  if (/NOAUTH|Authentication required/i.test(message)) return 'Redis requires a password: set redis.password (and redis.username for an ACL user).';
  if (/NOPERM/.test(message)) return 'The ACL user lacks a permission passgate needs: see docs/scaling.md, "What Redis must be configured with".';
  if (/certificate|self[- ]signed|altnames|unable to verify|issuer/i.test(message)) {
    return 'The Redis certificate is not trusted: set redis.ca_file to the CA bundle that signed it, and redis.servername when the certificate names another host than the one connected to.';
  }
  if (/wrong version number|packet length too long|ECONNRESET|socket hang up|Connection is closed/i.test(message)) {
    return 'A TLS mismatch looks like this: use TLS (redis.tls: true or a rediss:// url) exactly when the Redis port expects it. Otherwise check that Redis runs and is reachable from here.';
  }
  return 'Check redis.url (or sentinels / cluster_nodes), redis.username, redis.password, redis.tls and that Redis runs and is reachable from here.';
}

/**
 * Redis answers, must never evict (`maxmemory-policy noeviction`) and should persist (AOF or RDB). Managed Redis
 * services often refuse CONFIG: then the policy and AOF are read from INFO, and whether RDB snapshots are
 * scheduled cannot be told, which is a warning that says so.
 */
export async function checkRedis(config: RedisConfig): Promise<CheckResult[]> {
  const client = createRedisClient(config, 'passgate-doctor');
  let lastError = '';
  client.on('error', (error: Error) => (lastError = error.message));
  try {
    try {
      await client.ping();
    } catch (error) {
      const why = lastError || (error as Error).message;
      return [fail('redis', `no answer from Redis: ${why}`, redisFailureHint(why))];
    }
    const node = client instanceof Cluster ? client.nodes('master')[0] : client;
    if (!node) return [fail('redis', 'the cluster has no reachable master', 'Check redis.cluster_nodes.')];
    const version = (await info(node, 'server').catch(() => new Map<string, string>())).get('redis_version') ?? 'unknown version';
    const results: CheckResult[] = [pass('redis', `answers PING (Redis ${version}${client instanceof Cluster ? ', cluster' : ''})`)];

    let policy: string;
    let aof: boolean;
    let rdb: boolean | null;
    let configRefused: string | null = null;
    try {
      policy = await configGet(node, 'maxmemory-policy');
      aof = (await configGet(node, 'appendonly')) === 'yes';
      rdb = (await configGet(node, 'save')).trim() !== '';
    } catch (error) {
      configRefused = (error as Error).message;
      try {
        const memory = await info(node, 'memory');
        const persistence = await info(node, 'persistence');
        policy = memory.get('maxmemory_policy') ?? 'unknown';
        aof = persistence.get('aof_enabled') === '1';
        rdb = null;
      } catch (infoError) {
        results.push(
          warn(
            'redis eviction',
            `cannot read the eviction policy: CONFIG GET and INFO both refused (${(infoError as Error).message.slice(0, 120)})`,
            'Check by hand that maxmemory-policy is noeviction and that persistence is on (the managed service\'s settings).',
          ),
        );
        return results;
      }
    }
    results.push(
      policy === 'noeviction'
        ? pass('redis eviction', 'maxmemory-policy is noeviction')
        : fail('redis eviction', `maxmemory-policy is ${policy}`, EVICTION_HINT),
    );
    if (aof) results.push(pass('redis persistence', 'append-only file (AOF) is on'));
    else if (rdb === true) results.push(pass('redis persistence', 'RDB snapshots are scheduled (save)'));
    else if (rdb === false) results.push(warn('redis persistence', 'no persistence: appendonly no and save ""', PERSISTENCE_HINT));
    if (configRefused !== null) {
      results.push(
        warn(
          'redis config',
          `CONFIG GET refused (${configRefused.slice(0, 120)}); read the eviction policy${aof ? ' and AOF' : ''} from INFO instead`,
          'Managed Redis services often disable CONFIG. Whether RDB snapshots are scheduled cannot be read from INFO: check the service\'s backup/persistence settings.',
        ),
      );
    }
    return results;
  } finally {
    client.disconnect();
  }
}
