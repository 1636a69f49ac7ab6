import type { AppPasswordRecord, MessagePolicy } from './app-password-record.js';

/**
 * A change to a record that keeps its password, so the device needs no re-keying (`app-password edit`, turn off
 * and on). `disabledAt`: a time turns it off (an already turned-off record keeps its first time), null turns it on.
 */
export interface AppPasswordPatch {
  name?: string;
  expiresAt?: number | null;
  allowedNetworks?: string[];
  policy?: MessagePolicy;
  disabledAt?: number | null;
}

/** The record with `patch` applied (the stores apply the same rule inside their atomic write). */
export function applyPatch(record: AppPasswordRecord, patch: AppPasswordPatch): AppPasswordRecord {
  const next = { ...record };
  if (patch.name !== undefined) next.name = patch.name;
  if (patch.expiresAt !== undefined) next.expiresAt = patch.expiresAt;
  if (patch.allowedNetworks !== undefined) next.allowedNetworks = [...patch.allowedNetworks];
  if (patch.policy !== undefined) next.policy = patch.policy;
  if (patch.disabledAt !== undefined) next.disabledAt = patch.disabledAt === null ? null : (record.disabledAt ?? patch.disabledAt);
  return next;
}
