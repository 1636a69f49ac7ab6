import { GatewayError } from '../core/gateway-error.js';
import type { PasswordHasher } from '../core/password-hasher.js';

/**
 * Runs at most `concurrency` argon2 operations at once and queues at most `queueLimit` more; beyond that it
 * refuses at once (PG_OVERLOADED → a temporary "unavailable" outcome). argon2 already runs on libuv's thread
 * pool; this bound keeps a flood of guesses from taking every thread and all memory (19 MiB each), so DNS,
 * file I/O and logged-in sessions keep running.
 */
export class BoundedPasswordHasher implements PasswordHasher {
  private running = 0;
  private readonly waiting: (() => void)[] = [];

  constructor(
    private readonly inner: PasswordHasher,
    private readonly concurrency: number,
    private readonly queueLimit: number,
  ) {}

  /** Operations waiting for a slot (a gauge for metrics). */
  get queueLength(): number {
    return this.waiting.length;
  }

  private async slot<T>(work: () => Promise<T>): Promise<T> {
    if (this.running >= this.concurrency) {
      if (this.waiting.length >= this.queueLimit) {
        throw new GatewayError('PG_OVERLOADED', `password hashing queue is full (auth.hash_queue_limit ${this.queueLimit})`);
      }
      await new Promise<void>((resolve) => this.waiting.push(resolve));
    } else {
      this.running++;
    }
    try {
      return await work();
    } finally {
      const next = this.waiting.shift();
      // Hand the slot straight to the next waiter, so `running` never dips and a newcomer cannot jump the queue.
      if (next) next();
      else this.running--;
    }
  }

  hash(password: string): Promise<string> {
    return this.slot(() => this.inner.hash(password));
  }

  verify(hash: string, password: string): Promise<boolean> {
    return this.slot(() => this.inner.verify(hash, password));
  }

  needsRehash(hash: string): boolean {
    return this.inner.needsRehash(hash);
  }
}
