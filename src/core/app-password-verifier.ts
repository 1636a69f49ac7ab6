import { randomBytes } from 'node:crypto';
import { normalizeUsername, isValidUsername, type AppPasswordRecord } from './app-password-record.js';
import type { AppPasswordFormat } from './app-password-format.js';
import type { Clock } from './clock.js';
import type { CredentialSelector } from './credential-selector.js';
import type { CredentialStore } from './credential-store.js';
import type { PasswordHasher } from './password-hasher.js';
import type { VerifiedCredentialCache } from './verified-credential-cache.js';

export type VerifyResult =
  | { ok: true; reason: 'ok'; record: AppPasswordRecord; /** verified by the credential cache, no argon2 */ cached: boolean }
  | { ok: false; reason: 'invalid-credentials'; record: null }
  | { ok: false; reason: 'revoked' | 'expired' | 'disabled'; record: AppPasswordRecord; /** the right password was told by the cache, no argon2 ran */ cached: boolean };

export interface AppPasswordVerifierDeps {
  store: CredentialStore;
  hasher: PasswordHasher;
  selector: CredentialSelector;
  format: AppPasswordFormat;
  clock: Clock;
  /** Optional: skips argon2 for a (username, password) that verified moments ago against the same record. */
  cache?: VerifiedCredentialCache;
}

/**
 * Finds and verifies an app password: normalise → selector lookup → exactly one hash verification
 * (against a dummy hash when nothing matched, so an unknown user costs and answers like a wrong password)
 * → revoked / expired → re-hash when the parameters changed. A credential-cache hit replaces the hash
 * verification only; the record is still read from the store, so revocation and expiry apply at once.
 * Policy (scope, networks) and rate limits belong to the authenticator around it.
 */
export class AppPasswordVerifier {
  private dummyHash: Promise<string> | undefined;

  constructor(private readonly deps: AppPasswordVerifierDeps) {}

  async verify(rawUsername: string, rawPassword: string): Promise<VerifyResult> {
    const { store, hasher, selector, format, clock } = this.deps;
    const username = normalizeUsername(rawUsername);
    const password = format.normalize(rawPassword);
    // Not an app password at all: refused before any hashing, whoever the user is.
    if (password === null) return { ok: false, reason: 'invalid-credentials', record: null };

    const record = isValidUsername(username) ? await store.findBySelector(username, selector.derive(username, password)) : null;
    if (record === null) {
      await hasher.verify(await this.getDummyHash(), password);
      return { ok: false, reason: 'invalid-credentials', record: null };
    }
    const cached = this.deps.cache?.matches(username, password, record.id, record.hash) ?? false;
    if (!cached && !(await hasher.verify(record.hash, password))) return { ok: false, reason: 'invalid-credentials', record: null };

    // Only a correct password learns that it was revoked, expired or turned off: the device is told nothing new,
    // and the operator's audit log can name the forgotten device.
    if (record.revokedAt !== null) return { ok: false, reason: 'revoked', record, cached };
    if (record.expiresAt !== null && record.expiresAt <= clock()) return { ok: false, reason: 'expired', record, cached };
    if (record.disabledAt !== null) return { ok: false, reason: 'disabled', record, cached };

    if (hasher.needsRehash(record.hash)) {
      const newHash = await hasher.hash(password);
      if (await store.replaceHash(record.id, record.hash, newHash)) record.hash = newHash;
    }
    if (!cached) this.deps.cache?.remember(username, password, record.id, record.hash);
    return { ok: true, reason: 'ok', record, cached };
  }

  /**
   * Made once per process with the current parameters, so the dummy check costs what a real one costs.
   * A failed attempt (e.g. the hashing queue was full) is forgotten, never cached: a poisoned promise would
   * answer every miss "unavailable" without hashing — a free oracle for guessers.
   */
  private getDummyHash(): Promise<string> {
    if (!this.dummyHash) {
      const pending = this.deps.hasher.hash(randomBytes(16).toString('hex'));
      this.dummyHash = pending;
      pending.catch(() => {
        if (this.dummyHash === pending) this.dummyHash = undefined;
      });
    }
    return this.dummyHash;
  }

  /**
   * One argon2 verification against the dummy hash: what a wrong password costs. A right password refused after a
   * credential-cache hit spends it, so it is not answered faster than a wrong one (core/right-password-refusal.ts).
   */
  async spendLikeAWrongPassword(rawPassword: string): Promise<void> {
    await this.deps.hasher.verify(await this.getDummyHash(), this.canonical(rawPassword));
  }

  /**
   * What a refused password looked like, for the log (issue 18): `account-password` when it cannot be an app
   * password at all (not letters of an accepted length, app-password-format.ts), as when a user types their
   * Microsoft password; the admin can then tell them to use the app password. The password itself is never logged.
   */
  looksLike(rawPassword: string): 'app-password' | 'account-password' {
    return this.deps.format.normalize(rawPassword) === null ? 'account-password' : 'app-password';
  }

  /** The canonical form of a typed password, or the raw text when it cannot be one (for fingerprints). */
  canonical(rawPassword: string): string {
    return this.deps.format.normalize(rawPassword) ?? rawPassword;
  }
}
