import type { RequestSlots } from '../../core/ports/request-slots.js';

/**
 * At most `limit` Graph requests in flight per mailbox (Graph allows 4 concurrent requests per mailbox: Microsoft
 * Learn, "Outlook service limits"); the rest wait in arrival order, each at most `waitMs`, then get null. In this
 * instance's memory; with Redis, app.ts uses rate-limit/redis-request-slots.ts (shared by every instance).
 */
export class GraphRequestSlots implements RequestSlots {
  private readonly slots = new Map<string, { running: number; waiting: { grant: () => void }[] }>();

  constructor(
    private readonly limit: number,
    private readonly waitMs: number,
  ) {}

  /** A release function once a slot is free, or null when none freed up within the wait. */
  async acquire(key: string): Promise<(() => void) | null> {
    let slot = this.slots.get(key);
    if (!slot) {
      slot = { running: 0, waiting: [] };
      this.slots.set(key, slot);
    }
    const s = slot;
    if (s.running < this.limit) {
      s.running++;
      return this.releaser(key, s);
    }
    return new Promise((resolve) => {
      const waiter = {
        grant: () => {
          clearTimeout(timer);
          resolve(this.releaser(key, s));
        },
      };
      const timer = setTimeout(() => {
        s.waiting.splice(s.waiting.indexOf(waiter), 1);
        resolve(null);
      }, this.waitMs);
      s.waiting.push(waiter);
    });
  }

  /** Requests waiting for a slot, over every mailbox. */
  get waiting(): number {
    let n = 0;
    for (const slot of this.slots.values()) n += slot.waiting.length;
    return n;
  }

  private releaser(key: string, slot: { running: number; waiting: { grant: () => void }[] }): () => void {
    let released = false;
    return () => {
      if (released) return;
      released = true;
      const next = slot.waiting.shift();
      if (next) next.grant(); // the slot passes straight to the next waiter
      else if (--slot.running === 0) this.slots.delete(key);
    };
  }
}
