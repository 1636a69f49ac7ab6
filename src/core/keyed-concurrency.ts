/**
 * At most `limit` runs at once per key; the rest wait in arrival order. Used to serialise login attempts of
 * one (user, ip) pair, so the rate-limit gate of each attempt sees the failures of the ones before it: without
 * it, 500 parallel guesses all pass the gate before the first failure is counted.
 */
export class KeyedConcurrency {
  private readonly slots = new Map<string, { running: number; waiting: (() => void)[] }>();

  async run<T>(key: string, limit: number, work: () => Promise<T>): Promise<T> {
    let slot = this.slots.get(key);
    if (!slot) {
      slot = { running: 0, waiting: [] };
      this.slots.set(key, slot);
    }
    if (slot.running >= limit) await new Promise<void>((resolve) => slot!.waiting.push(resolve));
    else slot.running++;
    try {
      return await work();
    } finally {
      const next = slot.waiting.shift();
      if (next) next(); // the slot passes straight to the next waiter
      else if (--slot.running === 0) this.slots.delete(key);
    }
  }

  /** Keys with runs in progress (bounded by the connections in flight). */
  get size(): number {
    return this.slots.size;
  }
}
