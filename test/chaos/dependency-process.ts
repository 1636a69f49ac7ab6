import { spawn, type ChildProcess } from 'node:child_process';
import { once } from 'node:events';
import { existsSync, readFileSync } from 'node:fs';
import { resolve } from 'node:path';
import type { Delivery } from '../helpers/upstream-smtp-server.js';

const CHILD = resolve(import.meta.dirname, 'dependency-child.ts');

/** What dependency-child.ts runs, and the files that keep its state across a kill. */
export type ChildSpec =
  | { kind: 'oauth'; port: number; tokenLifetimeSeconds: number; stateFile: string; clientId: string; clientSecret: string }
  | { kind: 'smtp-upstream'; port: number; keyFile: string; certFile: string; introspectionEndpoint: string; deliveryLog: string };

/**
 * A chaos dependency run as a process (dependency-child.ts): `kill()` is a SIGKILL, as a crash or the OOM killer
 * ends a server (sockets reset by the kernel, nothing flushed that was not written), and `start()` brings it back on
 * the same port and the same state files.
 */
export class DependencyProcess {
  private child: ChildProcess | null = null;
  port = 0;

  constructor(private spec: ChildSpec) {}

  async start(): Promise<this> {
    const child = spawn(process.execPath, ['--import', import.meta.resolve('tsx'), CHILD, JSON.stringify({ ...this.spec, port: this.port })], {
      env: { PATH: process.env.PATH ?? '', HOME: process.env.HOME ?? '/' },
      stdio: ['pipe', 'pipe', 'pipe'],
    });
    this.child = child;
    let stderr = '';
    child.stderr!.on('data', (chunk: Buffer) => void (stderr = (stderr + chunk.toString('utf8')).slice(-4000)));
    let pending = '';
    const ready = new Promise<number>((resolvePort, reject) => {
      const timer = setTimeout(() => reject(new Error(`${this.spec.kind} did not start within 30 s: ${stderr}`)), 30_000);
      child.once('exit', (code, signal) => reject(new Error(`${this.spec.kind} exited (${code ?? signal}) while starting: ${stderr}`)));
      child.stdout!.on('data', (chunk: Buffer) => {
        pending += chunk.toString('utf8');
        const newline = pending.indexOf('\n');
        if (newline < 0) return;
        clearTimeout(timer);
        resolvePort((JSON.parse(pending.slice(0, newline)) as { port: number }).port);
      });
    });
    try {
      this.port = await ready;
    } catch (error) {
      await this.kill();
      throw error;
    }
    return this;
  }

  /** SIGKILL; resolves once the process is gone. */
  async kill(): Promise<void> {
    const child = this.child;
    this.child = null;
    if (!child || child.exitCode !== null || child.signalCode !== null) return;
    const exited = once(child, 'exit');
    child.kill('SIGKILL');
    await exited;
  }

  /** The messages the upstream accepted so far (its delivery log, complete for every 250 it wrote). */
  deliveries(): Delivery[] {
    if (this.spec.kind !== 'smtp-upstream' || !existsSync(this.spec.deliveryLog)) return [];
    return readLines(this.spec.deliveryLog).map((d) => ({ ...(d as Delivery), raw: (d as { raw: string | null }).raw === null ? null : Buffer.from((d as { raw: string }).raw, 'base64') }));
  }

  /** Tokens the OAuth server issued, by grant type (its state file). */
  grants(): Record<string, number> {
    const counts: Record<string, number> = {};
    if (this.spec.kind !== 'oauth' || !existsSync(this.spec.stateFile)) return counts;
    for (const { grant } of readLines(this.spec.stateFile) as { grant: string }[]) counts[grant] = (counts[grant] ?? 0) + 1;
    return counts;
  }
}

/** A JSON-lines file; a last line cut short by a kill is not a record. */
function readLines(file: string): unknown[] {
  const records: unknown[] = [];
  for (const line of readFileSync(file, 'utf8').split('\n')) {
    try {
      if (line) records.push(JSON.parse(line));
    } catch {
      // the kill landed in the middle of this write: it was never acknowledged
    }
  }
  return records;
}
