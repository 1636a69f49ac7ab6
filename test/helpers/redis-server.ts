import { execFile, spawn, type ChildProcess } from 'node:child_process';
import { once } from 'node:events';
import { createServer, connect } from 'node:net';
import { randomBytes } from 'node:crypto';
import { promisify } from 'node:util';

const runFile = promisify(execFile);

/** A free TCP port on 127.0.0.1 (bound and released; the kernel will not hand it out again at once). */
export async function freePort(): Promise<number> {
  const server = createServer();
  server.listen(0, '127.0.0.1');
  await once(server, 'listening');
  const port = (server.address() as { port: number }).port;
  server.close();
  await once(server, 'close');
  return port;
}

async function waitForPort(port: number, timeoutMs: number): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (Date.now() < deadline) {
    const ok = await new Promise<boolean>((resolve) => {
      const socket = connect(port, '127.0.0.1');
      socket.once('connect', () => (socket.destroy(), resolve(true)));
      socket.once('error', () => resolve(false));
    });
    if (ok) return;
    await new Promise((r) => setTimeout(r, 50));
  }
  throw new Error(`nothing listened on 127.0.0.1:${port} within ${timeoutMs} ms`);
}

export interface TestRedis {
  url: string;
  /** A key prefix unique to this test run, so runs sharing one REDIS_URL never see each other's keys. */
  prefix: string;
  /** Only for a server the harness started: stop it (SIGKILL: a crash, not a shutdown). */
  stop(): Promise<void>;
  /** Start it again on the same port after stop(). */
  start(): Promise<void>;
  /** Freeze the server (SIGSTOP): connections stay open, nothing answers — a hung Redis, data kept. */
  pause(): void;
  resume(): void;
  /** Stop for good. */
  close(): Promise<void>;
  owned: boolean;
}

/**
 * A real Redis for the tests: the one named by REDIS_URL, or a private redis-server on a free loopback port,
 * without persistence unless persistDir is given, that the harness starts and stops (needed by tests that take
 * Redis away mid-run).
 */
export interface StartRedisOptions {
  own?: boolean;
  persistDir?: string;
  /** TLS only (the plain port is off): PEM files; clients need no certificate. The url is then rediss://. */
  tls?: { certFile: string; keyFile: string; caFile: string };
  /** More redis-server arguments, e.g. ['--user', 'app on >secret ~* +@all'] for an ACL user. */
  args?: string[];
}

export async function startRedis(options: StartRedisOptions = {}): Promise<TestRedis> {
  const prefix = `pgtest:${randomBytes(4).toString('hex')}:`;
  if (process.env.REDIS_URL && !options.own && !options.persistDir && !options.tls && !options.args) {
    const none = async () => {};
    return { url: process.env.REDIS_URL, prefix, owned: false, stop: none, start: none, close: none, pause() {}, resume() {} };
  }
  const port = await freePort();
  let child: ChildProcess | undefined;
  // persistDir: an append-only file fsynced on every write, as passgate requires of a production Redis, so a
  // SIGKILL and restart keeps every key (the chaos run kills it); otherwise no persistence at all.
  const persistence = options.persistDir
    ? ['--dir', options.persistDir, '--save', '', '--appendonly', 'yes', '--appendfsync', 'always']
    : ['--save', '', '--appendonly', 'no'];
  const start = async () => {
    const listen = options.tls
      ? ['--port', '0', '--tls-port', String(port), '--tls-cert-file', options.tls.certFile, '--tls-key-file', options.tls.keyFile,
          '--tls-ca-cert-file', options.tls.caFile, '--tls-auth-clients', 'no']
      : ['--port', String(port)];
    child = spawn('redis-server', [...listen, '--bind', '127.0.0.1', ...persistence, ...(options.args ?? [])], {
      stdio: 'ignore',
    });
    child.once('error', () => {});
    await waitForPort(port, 10_000);
  };
  const stop = async () => {
    // A child killed by a signal has exitCode null and signalCode set: either means it is gone.
    if (!child || child.exitCode !== null || child.signalCode !== null) return;
    const exited = once(child, 'exit');
    child.kill('SIGCONT');
    child.kill('SIGKILL');
    await exited;
  };
  await start();
  return {
    url: `${options.tls ? 'rediss' : 'redis'}://127.0.0.1:${port}`,
    prefix,
    owned: true,
    start,
    stop,
    close: stop,
    pause: () => void child?.kill('SIGSTOP'),
    resume: () => void child?.kill('SIGCONT'),
  };
}

/** Kills every child still running (SIGKILL) and waits for each to exit (the Cluster and Sentinel helpers). */
export async function killAll(children: readonly ChildProcess[]): Promise<void> {
  await Promise.all(
    children.map(async (child) => {
      // A child killed by a signal has exitCode null and signalCode set: either means it is gone.
      if (child.exitCode !== null || child.signalCode !== null) return;
      const exited = once(child, 'exit');
      child.kill('SIGKILL');
      await exited;
    }),
  );
}

/** `redis-cli -h 127.0.0.1 -p <port> <args>`, its standard output. */
export async function redisCli(port: number, ...args: string[]): Promise<string> {
  return (await runFile('redis-cli', ['-h', '127.0.0.1', '-p', String(port), ...args], { timeout: 15_000 })).stdout;
}

/** Polls `check` every 100 ms until it is true (a throw counts as false), or fails naming `label` and `what`. */
export async function waitUntil(label: string, what: string, check: () => Promise<boolean>, timeoutMs = 30_000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (Date.now() < deadline) {
    if (await check().catch(() => false)) return;
    await new Promise((r) => setTimeout(r, 100));
  }
  throw new Error(`${label}: ${what} not reached within ${timeoutMs} ms`);
}
