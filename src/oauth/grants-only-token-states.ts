import type { StoredTokenState, TokenStateStore } from '../core/token-state-store.js';

/**
 * Token state as `passgate doctor` may change it in a store that serving instances share (Redis): only a successful
 * grant is written, because a provider that rotated the refresh token has already invalidated the stored one, and
 * not saving the new one would lose the mailbox's grant. A failure is reported by doctor and never stored: a doctor
 * run from a host without a route to the provider, or with another app's client id, must not make the serving
 * instances back off (`failing`, `nextAttemptAt`) or drop a mailbox's grant (`needs-connect`). Reads and the
 * cross-instance refresh lock pass through, so doctor and serve never redeem the same refresh token at once.
 */
export class GrantsOnlyTokenStates implements TokenStateStore {
  constructor(private readonly inner: TokenStateStore) {}

  get(key: string): Promise<StoredTokenState | null> {
    return this.inner.get(key);
  }

  list(): Promise<StoredTokenState[]> {
    return this.inner.list();
  }

  tryLock(key: string, ttlMs: number): Promise<(() => Promise<void>) | null> {
    return this.inner.tryLock(key, ttlMs);
  }

  async put(state: StoredTokenState): Promise<void> {
    if (state.status === 'ok') await this.inner.put(state);
  }

  /**
   * A failure is not written: false, as for a grant replaced meanwhile, so the provider skips its failure log line
   * and audit record (it logs "the grant was replaced meanwhile" instead, to doctor's silent logger).
   */
  putIf(state: StoredTokenState, field: 'sealedRefreshToken' | 'sealedAccessToken', expected: string | null): Promise<boolean> {
    return state.status === 'ok' ? this.inner.putIf(state, field, expected) : Promise.resolve(false);
  }

  async delete(): Promise<void> {
    // Only `oauth disconnect` deletes a mailbox's state; doctor never does.
  }
}
