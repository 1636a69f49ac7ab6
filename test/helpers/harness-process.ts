import { fork, type ChildProcess } from 'node:child_process';
import { once } from 'node:events';
import { resolve } from 'node:path';

const CHILD = resolve(import.meta.dirname, 'harness-child.ts');

/**
 * passgate (an SMTP or IMAP harness) in a child process (harness-child.ts), so a test can measure the memory the
 * gateway retains, not its own: `retained()` is the child's heap plus Buffer memory after a full collection.
 */
export class HarnessProcess {
  private constructor(
    private readonly child: ChildProcess,
    readonly ports: Record<string, number>,
  ) {}

  static async start(protocol: 'smtp' | 'imap', over: Record<string, Record<string, unknown>>): Promise<HarnessProcess> {
    const env = { ...process.env };
    delete env.NODE_TEST_CONTEXT; // the child is not a test file
    const child = fork(CHILD, [JSON.stringify({ protocol, over })], { execArgv: ['--import', import.meta.resolve('tsx'), '--expose-gc'], env, stdio: ['ignore', 'ignore', 'inherit', 'ipc'] });
    const ready = new Promise<Record<string, number>>((resolvePorts, reject) => {
      child.once('exit', (code, signal) => reject(new Error(`harness process exited (${code ?? signal}) while starting`)));
      child.on('message', (message: { ports?: Record<string, number> }) => message.ports && resolvePorts(message.ports));
    });
    try {
      return new HarnessProcess(child, await ready);
    } catch (error) {
      child.kill('SIGKILL');
      throw error;
    }
  }

  /** The gateway process's heap plus Buffer memory after a full collection. */
  async retained(): Promise<number> {
    const answer = new Promise<number>((resolveBytes) => {
      const onMessage = (message: { retained?: number }) => {
        if (message.retained === undefined) return;
        this.child.off('message', onMessage);
        resolveBytes(message.retained);
      };
      this.child.on('message', onMessage);
    });
    this.child.send('retained');
    return answer;
  }

  /**
   * Retained bytes once closed sockets are freed: they go over the next seconds (the close timers of smtp-server
   * and of the IMAP session), so poll until less than `slack` is left over `base`, for at most 20 s.
   */
  async retainedAfterClose(base: number, slack: number): Promise<number> {
    let after = await this.retained();
    for (const until = Date.now() + 20_000; after - base >= slack && Date.now() < until; after = await this.retained()) {
      await new Promise((r) => setTimeout(r, 1000));
    }
    return after;
  }

  async close(): Promise<void> {
    if (this.child.exitCode !== null || this.child.signalCode !== null) return;
    const exited = once(this.child, 'exit');
    this.child.send('close');
    await exited;
  }
}
