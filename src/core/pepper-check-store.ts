import { GatewayError } from './gateway-error.js';
import { samePepperCheck } from './pepper-keys.js';

/**
 * Port: where the store keeps the check value of the pepper it was written with (core/pepper-keys.ts pepperCheck:
 * an HMAC of a constant under a key derived from the pepper, never the pepper). SQLite: the `meta` table; Redis: one
 * key beside the app passwords.
 */
export interface PepperCheckStore {
  /** The recorded check value, or null when the store has none yet. */
  read(): Promise<string | null>;
  /** Records `check` unless one is recorded already; returns the value recorded now (either one). */
  recordIfAbsent(check: string): Promise<string>;
}

/** `recorded`: the store had no check value (a new store, or one written by an older passgate): it adopted this pepper. */
export type PepperCheckOutcome = 'matches' | 'recorded' | 'not-recorded';

/** What to tell an operator whose pepper is not the store's: the keys that set it, and what to do. */
export function pepperMismatchMessage(dataDir: string): string {
  return (
    'security.pepper: this store was written with another pepper, so none of its app passwords would verify. ' +
    `Restore the pepper it was written with (security.pepper, security.pepper_file, or the generated ${dataDir}/pepper) ` +
    'from the backup; passgate refuses to run with a different one'
  );
}

/**
 * A lost or changed pepper is a stop, not a silent reset: every device would get 535 and the audit log would say
 * invalid-credentials. The store's check value is compared with this configuration's; a store without one records
 * it (`record`: serve and the CLI) or is left alone (doctor, read-only). A different one throws PG_CONFIG_INVALID.
 */
export async function verifyPepperCheck(store: PepperCheckStore, check: string, options: { record: boolean; dataDir: string }): Promise<PepperCheckOutcome> {
  const stored = await store.read();
  if (stored === null && !options.record) return 'not-recorded';
  const now = stored ?? (await store.recordIfAbsent(check));
  if (!samePepperCheck(now, check)) throw new GatewayError('PG_CONFIG_INVALID', pepperMismatchMessage(options.dataDir));
  return stored === null ? 'recorded' : 'matches';
}
