/**
 * Port: persistent state of one token key (`app` or `mailbox:<address>`). Token fields are sealed
 * (AES-256-GCM) before they reach a store; a store never sees a token in clear. `put` replaces the whole
 * state in one atomic write, so a rotated refresh token and its access token are never half-written.
 */
export interface StoredTokenState {
  key: string;
  sealedRefreshToken: string | null;
  sealedAccessToken: string | null;
  accessExpiresAt: number | null;
  /** When the cached access token was obtained (for refresh-ahead scheduling). */
  accessObtainedAt: number | null;
  status: 'ok' | 'needs-connect' | 'failing' | 'unknown';
  lastSuccessAt: number | null;
  failingSince: number | null;
  /** Consecutive temporary failures (backoff exponent). */
  failures: number;
  /** No request to the provider before this (backoff). */
  nextAttemptAt: number | null;
  lastError: string | null;
  updatedAt: number;
}

export interface TokenStateStore {
  get(key: string): Promise<StoredTokenState | null>;
  put(state: StoredTokenState): Promise<void>;
  /**
   * Compare-and-set: replaces the state in one atomic step only if the stored `field` still equals `expected` (a
   * missing state reads as null); returns whether it wrote. Sealing uses a fresh IV, so every stored token has a
   * distinct sealed text, and an unchanged sealed field means nobody wrote a new token meanwhile (e.g. an
   * operator's `oauth connect` from another process while a refresh was failing).
   */
  putIf(state: StoredTokenState, field: 'sealedRefreshToken' | 'sealedAccessToken', expected: string | null): Promise<boolean>;
  list(): Promise<StoredTokenState[]>;
  delete(key: string): Promise<void>;
  /**
   * Takes the cross-instance refresh lock of `key` for `ttlMs`; returns its release, or null when another
   * holder has it. The embedded store serves one process, whose single-flight already serialises.
   */
  tryLock(key: string, ttlMs: number): Promise<(() => Promise<void>) | null>;
}

/**
 * Port: seals and opens one token field, bound to its state's key (`context`): AES-256-GCM with a fresh IV in
 * oauth/token-cipher.ts. What reads sealed tokens outside oauth/ (store import checks them) takes this.
 */
export interface TokenSealer {
  seal(plaintext: string, context: string): string;
  /** Throws when `sealed` was not sealed with this key for this context. */
  open(sealed: string, context: string): string;
}
