/**
 * Port: at most a fixed number of requests in flight per key (Graph's 4 concurrent requests per mailbox), waiting in
 * turn up to a bound. `acquire` resolves with a release function once a slot is free, or null when none freed up in
 * time; releasing twice is harmless. In memory (one instance) or in Redis (every instance shares the count).
 */
export interface RequestSlots {
  acquire(key: string): Promise<(() => void) | null>;
  /** Requests of this instance waiting for a slot (metrics). */
  readonly waiting: number;
}
