import { userInfo } from 'node:os';
import { openApp, type App } from '../app.js';
import { operatorActor, type Actor } from '../core/actor.js';
import { loadConfig } from '../config/config-loader.js';
import { createLogger } from '../observability/logger.js';

/** What a command may touch of the outside world; tests pass their own. */
export interface CliIo {
  stdout: (text: string) => void;
  stderr: (text: string) => void;
  env: Record<string, string | undefined>;
  cwd: string;
  stdin: AsyncIterable<string | Buffer>;
  /** stdout is a terminal (commands that write secrets' hashes refuse it); absent: not a terminal. */
  stdoutIsTty?: boolean;
  /** stdin is a terminal: a command that reads data from it (store import) would wait for typing. */
  stdinIsTty?: boolean;
  /**
   * Writes to stdout and resolves once written; rejects when it cannot be (the reading end of a pipe closed), so a
   * command whose output is its result (`store export`) never reports success for output nobody got. Absent:
   * `stdout`, taken as written.
   */
  writeStdout?: (text: string) => Promise<void>;
}

export class CliContext {
  constructor(
    readonly io: CliIo,
    private readonly configPath: () => string | undefined,
  ) {}

  /** Who an operator action is attributed to in the audit log. */
  actor(): string {
    try {
      return `cli:${userInfo().username}`;
    } catch {
      return 'cli';
    }
  }

  /** The operator acting from this console: every command goes through admin/ as this actor. */
  operator(): Actor {
    return operatorActor(this.actor());
  }

  /**
   * Loads the configuration, opens the app, runs `fn`, and always closes what it opened. A server logs JSON events
   * at the configured level to stdout; other commands log warnings and errors only, to stderr, so stdout stays
   * clean for --json.
   */
  async withApp<T>(fn: (app: App) => Promise<T>, options: { server?: boolean } = {}): Promise<T> {
    const { config, warnings } = loadConfig({ path: this.configPath(), env: this.io.env, cwd: this.io.cwd });
    const logger = options.server
      ? createLogger(config.log.level)
      : createLogger(config.log.level === 'silent' ? 'silent' : 'warn', { write: (line: string) => this.io.stderr(line) });
    for (const warning of warnings) {
      if (options.server) logger.warn({ config: config.source }, warning);
      else this.io.stderr(`passgate: warning: ${warning}\n`);
    }
    const app = await openApp(config, { logger, defaultMetrics: options.server ?? false, threadPoolSize: Number(this.io.env.UV_THREADPOOL_SIZE) || undefined });
    try {
      return await fn(app);
    } finally {
      await app.close();
    }
  }

  json(value: unknown): void {
    this.io.stdout(`${JSON.stringify(value, null, 2)}\n`);
  }
}
