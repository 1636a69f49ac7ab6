import type { Clock } from '../core/clock.js';
import type { ContinuousErrorLimits, ContinuousErrorMemory, RememberedRefusal } from '../core/continuous-error-memory.js';

interface Entry {
  count: number;
  windowEndsAt: number;
  heldUntil: number;
  refusal: RememberedRefusal | null;
}

/**
 * The continuous-error memory of one instance (no Redis). Bounded: past `maxEntries` the oldest key is forgotten
 * (a Map keeps insertion order; a key is re-inserted when it changes), so a flood of distinct recipients costs a
 * fixed amount of memory.
 */
export class MemoryContinuousErrorMemory implements ContinuousErrorMemory {
  private readonly entries = new Map<string, Entry>();

  constructor(
    private readonly clock: Clock,
    private readonly maxEntries = 100_000,
  ) {}

  async record(key: string, refusal: RememberedRefusal, limits: ContinuousErrorLimits): Promise<boolean> {
    const now = this.clock();
    const previous = this.entries.get(key);
    const entry: Entry = previous && previous.windowEndsAt > now ? previous : { count: 0, windowEndsAt: now + limits.windowMs, heldUntil: previous?.heldUntil ?? 0, refusal: previous?.refusal ?? null };
    entry.count++;
    const holds = entry.count >= limits.threshold;
    if (holds) Object.assign(entry, { count: 0, heldUntil: now + limits.holdMs, refusal });
    this.entries.delete(key);
    this.entries.set(key, entry);
    if (this.entries.size > this.maxEntries) this.entries.delete(this.entries.keys().next().value!);
    return holds;
  }

  async held(key: string): Promise<{ refusal: RememberedRefusal; remainingMs: number } | null> {
    const entry = this.entries.get(key);
    const remainingMs = entry ? entry.heldUntil - this.clock() : 0;
    return entry?.refusal && remainingMs > 0 ? { refusal: entry.refusal, remainingMs } : null;
  }

  async forget(key: string): Promise<void> {
    const entry = this.entries.get(key);
    if (!entry) return;
    if (entry.heldUntil > this.clock()) entry.count = 0;
    else this.entries.delete(key);
  }
}
