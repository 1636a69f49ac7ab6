import type { AppPasswordRecord } from './app-password-record.js';

/** What importing one record did to the store. */
export type ImportOutcome = 'new' | 'replaced' | 'kept-revoked';

export interface ImportCounts {
  added: number;
  replaced: number;
  /** Records the store held as revoked that the file would have made active again: they stay revoked. */
  keptRevoked: number;
}

/**
 * The record `store import` writes over `existing` (the store's record with the same id, or null). The file wins,
 * except where it is older than the store by nature:
 * - a revocation is never undone: a record the store holds revoked keeps its `revokedAt` (an export taken before
 *   a stolen device's password was revoked must not bring that password back);
 * - a record turned off here stays off (keeping its `disabledAt`): the file cannot tell whether it was turned on
 *   again after it was turned off here, and turning it on again is one command; a record the file has off is off;
 * - the last use is the later of the two (with its address and protocol), the use count the larger.
 * Both stores apply this rule inside their atomic write (credential-store.ts, `importRecords`).
 */
export function mergeImportedRecord(existing: AppPasswordRecord | null, incoming: AppPasswordRecord): { record: AppPasswordRecord; outcome: ImportOutcome } {
  if (existing === null) return { record: incoming, outcome: 'new' };
  const record = { ...incoming, useCount: Math.max(existing.useCount, incoming.useCount) };
  if (existing.lastUsedAt !== null && (incoming.lastUsedAt === null || existing.lastUsedAt > incoming.lastUsedAt)) {
    record.lastUsedAt = existing.lastUsedAt;
    record.lastUsedIp = existing.lastUsedIp;
    record.lastUsedProtocol = existing.lastUsedProtocol;
  }
  if (existing.disabledAt !== null) record.disabledAt = existing.disabledAt;
  if (existing.revokedAt === null) return { record, outcome: 'replaced' };
  record.revokedAt = existing.revokedAt;
  return { record, outcome: incoming.revokedAt === null ? 'kept-revoked' : 'replaced' };
}

/** Adds one outcome to the running counts. */
export function countImport(counts: ImportCounts, outcome: ImportOutcome): void {
  if (outcome === 'new') counts.added++;
  else if (outcome === 'replaced') counts.replaced++;
  else counts.keptRevoked++;
}
