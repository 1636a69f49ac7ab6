import { spawn, type ChildProcess } from 'node:child_process';
import { once } from 'node:events';
import { existsSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { connect, createServer } from 'node:net';
import { tmpdir } from 'node:os';
import { delimiter, join } from 'node:path';

export interface HaproxyBackendServer {
  name: string;
  host: string;
  port: number;
}

export interface HaproxyOptions {
  /** One TCP frontend per entry (e.g. smtp, imap), each balancing over its servers with PROXY protocol v2. */
  frontends: Record<string, HaproxyBackendServer[]>;
  /** Where the frontends listen; ::1 by default, so clients differ from HAProxy's own 127.0.0.1 towards servers. */
  bindHost?: '::1' | '127.0.0.1';
  /** balance algorithm (roundrobin: consecutive connections alternate between the servers). */
  balance?: 'roundrobin' | 'leastconn';
}

export interface TestHaproxy {
  /** The port of each frontend, on bindHost. */
  ports: Record<string, number>;
  bindHost: string;
  config: string;
  stop(): Promise<void>;
}

const START_TIMEOUT_MS = 10_000;

function haproxyBinary(): string {
  if (process.env.HAPROXY_BIN) return process.env.HAPROXY_BIN;
  // /usr/sbin is often missing from a developer's PATH.
  for (const dir of [...(process.env.PATH ?? '').split(delimiter), '/usr/sbin', '/usr/local/sbin']) {
    if (dir && existsSync(join(dir, 'haproxy'))) return join(dir, 'haproxy');
  }
  throw new Error('haproxy: no binary (apt-get install haproxy; see .ci/apt-packages)');
}

/** A free TCP port on `host` (bound and released). */
async function freePortOn(host: string): Promise<number> {
  const server = createServer();
  server.listen(0, host);
  await once(server, 'listening');
  const port = (server.address() as { port: number }).port;
  server.close();
  await once(server, 'close');
  return port;
}

async function listening(host: string, port: number): Promise<boolean> {
  return new Promise((resolve) => {
    const socket = connect({ host, port });
    socket.once('connect', () => (socket.destroy(), resolve(true)));
    socket.once('error', () => resolve(false));
  });
}

/** Processes not yet stopped, killed if the test process exits without stop(). */
const live = new Set<ChildProcess>();
let exitHook = false;

/**
 * A real HAProxy (Debian's 2.6) on loopback in front of passgate instances, as an organisation runs it: TCP mode
 * (TLS passes through to passgate), every connection to a server starts with a PROXY protocol v2 header
 * (`send-proxy-v2`) naming the client. No health checks (they would be connections without a client); a server
 * that refuses is retried and the connection redispatched to another (`retries`, `option redispatch`), which is
 * what carries clients over when an instance is lost. Runs in the foreground (`-db`) as a child of the tests, as
 * root in CI or as the developer, and is killed by stop().
 */
export async function startHaproxy(options: HaproxyOptions): Promise<TestHaproxy> {
  const bindHost = options.bindHost ?? '::1';
  const dir = mkdtempSync(join(tmpdir(), 'passgate-haproxy-'));
  const ports: Record<string, number> = {};
  const lines = [
    'global',
    '  maxconn 256',
    '  nbthread 1',
    'defaults',
    '  mode tcp',
    '  timeout connect 2s',
    '  timeout client 10m',
    '  timeout server 10m',
    '  retries 2',
    '  option redispatch',
  ];
  for (const [name, servers] of Object.entries(options.frontends)) {
    const port = await freePortOn(bindHost);
    ports[name] = port;
    lines.push(`frontend ${name}`, `  bind ${bindHost.includes(':') ? `[${bindHost}]` : bindHost}:${port}`, `  default_backend ${name}-servers`);
    lines.push(`backend ${name}-servers`, `  balance ${options.balance ?? 'roundrobin'}`);
    for (const s of servers) lines.push(`  server ${s.name} ${s.host}:${s.port} send-proxy-v2`);
  }
  const config = `${lines.join('\n')}\n`;
  const file = join(dir, 'haproxy.cfg');
  writeFileSync(file, config);

  let stderr = '';
  const child = spawn(haproxyBinary(), ['-db', '-f', file], { stdio: ['ignore', 'ignore', 'pipe'] });
  child.stderr!.on('data', (chunk: Buffer) => (stderr = (stderr + chunk.toString()).slice(-4000)));
  child.once('error', (error) => (stderr += `\n${error.message}`));
  live.add(child);
  if (!exitHook) {
    exitHook = true;
    process.once('exit', () => {
      for (const c of live) c.kill('SIGKILL');
    });
  }
  const stop = async () => {
    live.delete(child);
    if (child.exitCode === null && child.signalCode === null) {
      const exited = once(child, 'exit');
      child.kill('SIGTERM');
      const timer = setTimeout(() => child.kill('SIGKILL'), 3000);
      await exited;
      clearTimeout(timer);
    }
    rmSync(dir, { recursive: true, force: true });
  };

  const deadline = Date.now() + START_TIMEOUT_MS;
  for (;;) {
    if (child.exitCode !== null || child.signalCode !== null) {
      await stop();
      throw new Error(`haproxy exited at start: ${stderr.trim()}\n${config}`);
    }
    const up = await Promise.all(Object.values(ports).map((port) => listening(bindHost, port)));
    if (up.every(Boolean)) break;
    if (Date.now() > deadline) {
      await stop();
      throw new Error(`haproxy did not listen within ${START_TIMEOUT_MS} ms: ${stderr.trim()}`);
    }
    await new Promise((r) => setTimeout(r, 50));
  }
  return { ports, bindHost, config, stop };
}
