import { spawn, type ChildProcess } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { freePort, killAll, redisCli, waitUntil } from './redis-server.js';

const TIMEOUT_MS = 30_000;

export interface TestRedisSentinel {
  /** `redis.sentinels` */
  sentinels: { host: string; port: number }[];
  name: string;
  prefix: string;
  /** The port of the current master, as the sentinel reports it. */
  masterPort(): Promise<number>;
  /** Resolves once the replica has every write the master had when called (before a failover loses none). */
  synced(): Promise<void>;
  /** Asks the sentinel to fail over to the replica; resolves once the sentinel names the new master. */
  failover(): Promise<number>;
  close(): Promise<void>;
}


const waitFor = (what: string, check: () => Promise<boolean>) => waitUntil('redis sentinel', what, check, TIMEOUT_MS);

/**
 * A real Sentinel deployment on 127.0.0.1: a master, one replica, and one sentinel (quorum 1) watching them, each
 * on a free port, without persistence. `failover()` promotes the replica (SENTINEL FAILOVER), as after a lost master.
 */
export async function startRedisSentinel(): Promise<TestRedisSentinel> {
  const dir = mkdtempSync(join(tmpdir(), 'passgate-redis-sentinel-'));
  const children: ChildProcess[] = [];
  const name = 'passgate-test';
  const start = (args: string[]) => {
    const child = spawn('redis-server', args, { stdio: 'ignore' });
    child.once('error', () => {});
    children.push(child);
  };
  const close = async () => {
    await killAll(children);
    rmSync(dir, { recursive: true, force: true });
  };
  try {
    const [master, replica, sentinel] = [await freePort(), await freePort(), await freePort()];
    const common = ['--bind', '127.0.0.1', '--save', '', '--appendonly', 'no', '--dir', dir];
    start(['--port', String(master), ...common, '--dbfilename', 'm.rdb']);
    start(['--port', String(replica), ...common, '--dbfilename', 'r.rdb', '--replicaof', '127.0.0.1', String(master)]);
    await waitFor('replica in sync', async () => (await redisCli(replica, 'INFO', 'replication')).includes('master_link_status:up'));
    const conf = join(dir, 'sentinel.conf');
    writeFileSync(
      conf,
      [
        `port ${sentinel}`,
        'bind 127.0.0.1',
        `dir ${dir}`,
        `sentinel monitor ${name} 127.0.0.1 ${master} 1`,
        `sentinel down-after-milliseconds ${name} 5000`,
        `sentinel failover-timeout ${name} 10000`,
        '',
      ].join('\n'),
    );
    start([conf, '--sentinel']);
    const masterPort = async () => Number((await redisCli(sentinel, 'SENTINEL', 'get-master-addr-by-name', name)).split('\n')[1]);
    await waitFor('sentinel knows the replica', async () => (await redisCli(sentinel, 'SENTINEL', 'replicas', name)).includes(String(replica)));
    return {
      sentinels: [{ host: '127.0.0.1', port: sentinel }],
      name,
      prefix: `pgtest:${randomBytes(4).toString('hex')}:`,
      masterPort,
      async synced() {
        const current = await masterPort();
        const other = current === master ? replica : master;
        const offset = (port: number, field: string) => redisCli(port, 'INFO', 'replication').then((text) => Number(new RegExp(`${field}:(\\d+)`).exec(text)?.[1] ?? -1));
        const target = await offset(current, 'master_repl_offset');
        await waitFor('replica caught up', async () => (await offset(other, 'slave_repl_offset')) >= target);
      },
      async failover() {
        const before = await masterPort();
        await redisCli(sentinel, 'SENTINEL', 'FAILOVER', name);
        let now = before;
        await waitFor('failover', async () => (now = await masterPort()) !== before);
        await waitFor('new master writable', async () => (await redisCli(now, 'INFO', 'replication')).includes('role:master'));
        return now;
      },
      close,
    };
  } catch (error) {
    await close();
    throw error;
  }
}
