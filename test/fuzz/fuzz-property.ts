import type fc from 'fast-check';

/** A named fast-check property with the number of cases `npm test` runs (the fuzz runner runs it for a time). */
export interface FuzzProperty {
  name: string;
  // eslint-disable-next-line @typescript-eslint/no-explicit-any -- properties of any argument tuple
  property: fc.IRawProperty<any>;
  /** Cases per `npm test` run: bounded so the suite stays fast. */
  numRuns: number;
  /** Share of `npm run fuzz`'s time relative to the other properties (default 1). */
  weight?: number;
}

/** What a fuzz target gives its runners: its properties, and a close for whatever it started (servers, harnesses). */
export interface FuzzTarget {
  properties: FuzzProperty[];
  close(): Promise<void>;
}

/**
 * Collects what must never happen in the process during a run: an exception or a rejection nobody handled.
 * Installed around a run; `take()` returns and clears what was seen, so a property can fail the case that caused it.
 */
export class ProcessWatch {
  private seen: string[] = [];
  private readonly onError = (error: unknown) => this.seen.push(`uncaught: ${(error as Error)?.stack ?? String(error)}`);
  private readonly onRejection = (error: unknown) => this.seen.push(`unhandled rejection: ${(error as Error)?.stack ?? String(error)}`);

  start(): this {
    process.on('uncaughtException', this.onError);
    process.on('unhandledRejection', this.onRejection);
    return this;
  }

  take(): string[] {
    return this.seen.splice(0);
  }

  stop(): void {
    process.off('uncaughtException', this.onError);
    process.off('unhandledRejection', this.onRejection);
  }
}

/** Logged events at error level (a caught bug, e.g. "imap session failed"): each one fails the case. */
export class ErrorLog {
  private seen: string[] = [];
  info(): void {}
  warn(): void {}
  error(details: object, message: string): void {
    this.seen.push(`${message} ${JSON.stringify(details)}`);
  }
  take(): string[] {
    return this.seen.splice(0);
  }
}

/** The seed `npm test` runs every property with: the same cases on every run, so a failure reproduces. */
export const TEST_SEED = 20261122;
