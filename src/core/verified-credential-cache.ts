import { createHmac, randomBytes } from 'node:crypto';
import type { Clock } from './clock.js';

interface Entry {
  id: string;
  hash: string;
  until: number;
}

/**
 * Remembers, for a short time, that (username, password) verified against the record `id` whose hash was
 * `hash`, so repeated logins (scanners connect once per message) cost no argon2.
 *
 * It never decides on its own: a hit still reads the record from the store, and counts only if the record
 * still has that id and that hash and is neither revoked nor expired. Revocation, revoke-all and expiry
 * therefore take effect at once on every instance, with no invalidation message to lose. Keys are an HMAC under
 * a per-process random key, so the cache holds nothing that verifies a password elsewhere.
 */
export class VerifiedCredentialCache {
  private readonly key = randomBytes(32);
  private readonly entries = new Map<string, Entry>();

  constructor(
    private readonly ttlMs: number,
    private readonly maxEntries: number,
    private readonly clock: Clock,
  ) {}

  get enabled(): boolean {
    return this.ttlMs > 0 && this.maxEntries > 0;
  }

  private keyOf(username: string, canonicalPassword: string): string {
    return createHmac('sha256', this.key).update(`${username}\0${canonicalPassword}`).digest('base64url');
  }

  /** True when this exact (username, password) verified against this record and hash within the TTL. */
  matches(username: string, canonicalPassword: string, id: string, hash: string): boolean {
    if (!this.enabled) return false;
    const key = this.keyOf(username, canonicalPassword);
    const entry = this.entries.get(key);
    if (!entry) return false;
    if (entry.until <= this.clock() || entry.id !== id || entry.hash !== hash) {
      this.entries.delete(key);
      return false;
    }
    return true;
  }

  remember(username: string, canonicalPassword: string, id: string, hash: string): void {
    if (!this.enabled) return;
    const key = this.keyOf(username, canonicalPassword);
    this.entries.delete(key);
    // Map iteration order is insertion order: the first key is the oldest, evicted first.
    while (this.entries.size >= this.maxEntries) this.entries.delete(this.entries.keys().next().value!);
    this.entries.set(key, { id, hash, until: this.clock() + this.ttlMs });
  }

  /** Drops every entry of a record (local hygiene after a revocation; correctness never depends on it). */
  forget(id: string): void {
    for (const [key, entry] of this.entries) if (entry.id === id) this.entries.delete(key);
  }

  get size(): number {
    return this.entries.size;
  }
}
