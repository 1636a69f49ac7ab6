import { spawn, type ChildProcess } from 'node:child_process';
import { createWriteStream, type WriteStream } from 'node:fs';
import { resolve } from 'node:path';

const CLI = resolve(import.meta.dirname, '../../src/cli.ts');

export interface PassgatePorts {
  submissions: number;
  imaps: number;
  ops: number;
}

/**
 * `passgate serve` in its own process, as an operator runs it (the CLI from source through tsx, with the same V8
 * flag as bin/passgate.js), so "passgate never crashes" is observable: the process is still there and answers.
 * Its JSON log goes to `logPath`.
 */
interface Watch {
  exit: { code: number | null; signal: NodeJS.Signals | null } | null;
  /** The last 4000 characters of stderr (a crash's stack trace). */
  stderrTail: string;
  /** Log lines at level error or fatal. */
  errorLines: number;
}

export class PassgateProcess {
  private constructor(
    private readonly watch: Watch,
    private readonly child: ChildProcess,
    readonly ports: PassgatePorts,
    readonly logPath: string,
    private readonly log: WriteStream,
  ) {}

  static async start(configFile: string, cwd: string, logPath: string): Promise<PassgateProcess> {
    const child = spawn(process.execPath, ['--max-semi-space-size=2', '--import', import.meta.resolve('tsx'), CLI, '--config', configFile, 'serve'], {
      cwd,
      env: { PATH: process.env.PATH ?? '', HOME: process.env.HOME ?? '/' },
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    const log = createWriteStream(logPath);
    const watch: Watch = { exit: null, stderrTail: '', errorLines: 0 };
    child.once('exit', (code, signal) => (watch.exit = { code, signal }));
    let startedPorts: PassgatePorts | null = null;
    let pending = '';
    const ports = new Promise<PassgatePorts>((resolvePorts, reject) => {
      const timer = setTimeout(() => reject(new Error(`passgate serve did not start within 60 s; stderr: ${watch.stderrTail}`)), 60_000);
      child.once('exit', (code, signal) => reject(new Error(`passgate serve exited (${code ?? signal}) while starting: ${watch.stderrTail}`)));
      child.stdout!.on('data', (chunk: Buffer) => {
        log.write(chunk);
        pending += chunk.toString('utf8');
        let newline: number;
        while ((newline = pending.indexOf('\n')) >= 0) {
          const line = pending.slice(0, newline);
          pending = pending.slice(newline + 1);
          if (/"level":(50|60)/.test(line)) watch.errorLines++;
          if (startedPorts === null && line.includes('"msg":"passgate started"')) {
            const entry = JSON.parse(line) as { smtp?: Record<string, number>; imap?: Record<string, number>; ops: number };
            startedPorts = { submissions: entry.smtp?.['submissions'] ?? 0, imaps: entry.imap?.['imaps'] ?? 0, ops: entry.ops };
            clearTimeout(timer);
            resolvePorts(startedPorts);
          }
        }
      });
      child.stderr!.on('data', (chunk: Buffer) => {
        log.write(chunk);
        watch.stderrTail = (watch.stderrTail + chunk.toString('utf8')).slice(-4000);
      });
    });
    try {
      return new PassgateProcess(watch, child, await ports, logPath, log);
    } catch (error) {
      child.kill('SIGKILL');
      log.end();
      throw error;
    }
  }

  get stderrTail(): string {
    return this.watch.stderrTail;
  }

  get errorLines(): number {
    return this.watch.errorLines;
  }

  get pid(): number | undefined {
    return this.child.pid;
  }

  /** null while running; how it ended otherwise. */
  get exited(): { code: number | null; signal: NodeJS.Signals | null } | null {
    return this.watch.exit;
  }

  /** /healthz answers 200 within 5 s. */
  async healthy(): Promise<boolean> {
    try {
      const response = await fetch(`http://127.0.0.1:${this.ports.ops}/healthz`, { signal: AbortSignal.timeout(5000) });
      return response.status === 200;
    } catch {
      return false;
    }
  }

  /** SIGKILL, as a crash or the OOM killer ends it: no graceful stop, nothing flushed. Resolves once it exited. */
  async kill(): Promise<void> {
    if (!this.watch.exit) {
      const exited = new Promise<void>((r) => this.child.once('exit', () => r()));
      this.child.kill('SIGKILL');
      await exited;
    }
    this.stopping ??= new Promise<void>((r) => this.log.end(() => r())).then(() => null);
    await this.stopping;
  }

  /** SIGTERM, and the exit code of the graceful stop (SIGKILL after 20 s). */
  private stopping: Promise<number | null> | null = null;

  stop(): Promise<number | null> {
    this.stopping ??= this.terminate();
    return this.stopping;
  }

  private async terminate(): Promise<number | null> {
    if (!this.watch.exit) {
      const exited = new Promise<void>((r) => this.child.once('exit', () => r()));
      this.child.kill('SIGTERM');
      const timer = setTimeout(() => this.child.kill('SIGKILL'), 20_000);
      await exited;
      clearTimeout(timer);
    }
    await new Promise<void>((r) => this.log.end(() => r()));
    return this.watch.exit?.code ?? null;
  }
}
