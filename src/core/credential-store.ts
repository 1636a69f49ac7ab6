import type { AppPasswordPatch } from './app-password-patch.js';
import type { AppPasswordRecord } from './app-password-record.js';
import type { ImportCounts } from './imported-record.js';
import type { Protocol } from './protocol.js';

export interface CredentialUse {
  at: number;
  ip: string;
  protocol: Protocol;
}

export type InsertResult = { ok: true } | { ok: false; reason: 'limit-reached' | 'selector-taken' };

/**
 * Port: where app-password records live (SQLite embedded, Redis shared). One contract test suite
 * (test/integration/credential-store.contract.ts) holds every implementation to the same behaviour.
 * Infrastructure failures throw GatewayError('PG_STORE_UNAVAILABLE'); expected outcomes are values.
 */
export interface CredentialStore {
  /**
   * Adds a record unless its user already holds `maxActivePerUser` active (not revoked, not expired at `now`)
   * passwords, or another record of the same user has the same selector. Atomic with respect to both checks.
   */
  insert(record: AppPasswordRecord, limits: { maxActivePerUser: number; now: number }): Promise<InsertResult>;
  /** The record of `username` whose selector is `selector` (revoked and expired ones included), or null. */
  findBySelector(username: string, selector: string): Promise<AppPasswordRecord | null>;
  get(id: string): Promise<AppPasswordRecord | null>;
  /** Records, oldest first, optionally of one user. */
  list(filter?: { username?: string }): Promise<AppPasswordRecord[]>;
  /** Marks one record revoked; returns it (unchanged if already revoked), or null when there is no such id. */
  revoke(id: string, at: number): Promise<AppPasswordRecord | null>;
  /** Revokes every not-yet-revoked record of a user; returns the records it revoked. */
  revokeAll(username: string, at: number): Promise<AppPasswordRecord[]>;
  /**
   * Applies `patch` to a record that is not revoked, atomically (a concurrent revocation is never undone, a revoked
   * record is never changed). Returns the record as it was and as it is now (the same when it was revoked), or
   * null when there is no such id. With Redis, turning a password off or changing its expiry is announced like a
   * revocation (RevocationHints), so every instance checks its live sessions at once.
   */
  update(id: string, patch: AppPasswordPatch): Promise<{ before: AppPasswordRecord; after: AppPasswordRecord } | null>;
  recordUse(id: string, use: CredentialUse): Promise<void>;
  /** Compare-and-set of the hash (re-hash after a parameter change); false when the hash changed meanwhile. */
  replaceHash(id: string, expectedHash: string, newHash: string): Promise<boolean>;
  /**
   * `store import`: writes each record, replacing one with the same id (and any other record of its user with its
   * selector) merged by `mergeImportedRecord` against what the store holds at the moment of the write, so a
   * revoked record stays revoked. SQLite writes all or nothing (one transaction); Redis writes record by record,
   * each atomically against a concurrent revocation, so a failure part way leaves the records before it written.
   */
  importRecords(records: readonly AppPasswordRecord[]): Promise<ImportCounts>;
  /** Throws when the store cannot serve requests (readiness). */
  ping(): Promise<void>;
  close(): Promise<void>;
}
