import { spawn, type ChildProcess } from 'node:child_process';
import { mkdirSync, mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { randomBytes } from 'node:crypto';
import { freePort, killAll, redisCli, waitUntil } from './redis-server.js';


export interface TestRedisCluster {
  /** Seed nodes as "host:port" (the form of `redis.cluster_nodes`). */
  nodes: string[];
  /** A key prefix unique to this run. */
  prefix: string;
  /** Stop every node (SIGKILL) and remove their folders. */
  close(): Promise<void>;
  /** Freeze every node at once (SIGSTOP): connections stay open, nothing answers, no node sees another fail. */
  pause(): void;
  resume(): void;
}

const READY_TIMEOUT_MS = 30_000;


const waitFor = (what: string, check: () => Promise<boolean>) => waitUntil('redis cluster', what, check, READY_TIMEOUT_MS);

/**
 * A real three-master Redis Cluster on 127.0.0.1 (no replicas, no persistence): three redis-server processes with
 * `cluster-enabled yes`, each with its own free client port, its own free cluster-bus port (`cluster-port`, Redis 7)
 * and its own folder for nodes.conf, joined by `redis-cli --cluster create`. Resolves once every node reports
 * `cluster_state:ok`, so every one of the 16384 slots is served.
 */
export async function startRedisCluster(): Promise<TestRedisCluster> {
  const dir = mkdtempSync(join(tmpdir(), 'passgate-redis-cluster-'));
  const children: ChildProcess[] = [];
  const ports: number[] = [];
  const close = async () => {
    await killAll(children);
    rmSync(dir, { recursive: true, force: true });
  };
  try {
    for (let i = 0; i < 3; i++) {
      const port = await freePort();
      const busPort = await freePort();
      const nodeDir = join(dir, `node-${i}`);
      mkdirSync(nodeDir);
      const child = spawn(
        'redis-server',
        [
          '--port', String(port),
          '--bind', '127.0.0.1',
          '--cluster-enabled', 'yes',
          '--cluster-port', String(busPort),
          '--cluster-config-file', join(nodeDir, 'nodes.conf'),
          '--cluster-node-timeout', '5000',
          '--dir', nodeDir,
          '--save', '',
          '--appendonly', 'no',
          '--maxmemory-policy', 'noeviction',
        ],
        { stdio: 'ignore' },
      );
      child.once('error', () => {});
      children.push(child);
      ports.push(port);
    }
    for (const port of ports) await waitFor(`node ${port} answering`, async () => (await redisCli(port, 'PING')).trim() === 'PONG');
    await redisCli(ports[0]!, '--cluster', 'create', ...ports.map((p) => `127.0.0.1:${p}`), '--cluster-replicas', '0', '--cluster-yes');
    for (const port of ports) {
      await waitFor(`cluster_state:ok on ${port}`, async () => (await redisCli(port, 'CLUSTER', 'INFO')).includes('cluster_state:ok'));
    }
  } catch (error) {
    await close();
    throw error;
  }
  return {
    nodes: ports.map((p) => `127.0.0.1:${p}`),
    prefix: `pgtest:${randomBytes(4).toString('hex')}:`,
    close,
    pause: () => children.forEach((child) => child.kill('SIGSTOP')),
    resume: () => children.forEach((child) => child.kill('SIGCONT')),
  };
}
