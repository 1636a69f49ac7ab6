import { createHmac, hkdfSync, timingSafeEqual } from 'node:crypto';

export interface PepperKeys {
  /** Key of the credential selector's HMAC. */
  selectorKey: Buffer;
  /** Passed to argon2 as its `secret`, so a stolen database alone cannot be brute-forced. */
  hashSecret: Buffer;
  /** Key of the wrong-password fingerprint used for distinct-failure counting. */
  fingerprintKey: Buffer;
  /** Key of the pepper check `store export` writes and `store import` compares (pepperCheck). */
  exportCheckKey: Buffer;
}

/** Derives independent keys from the operator's pepper (HKDF-SHA256, RFC 5869), one per purpose. */
export function derivePepperKeys(pepper: string): PepperKeys {
  const derive = (info: string) => Buffer.from(hkdfSync('sha256', pepper, 'passgate', info, 32));
  return {
    selectorKey: derive('selector-v1'),
    hashSecret: derive('argon2-secret-v1'),
    fingerprintKey: derive('fingerprint-v1'),
    exportCheckKey: derive('export-check-v1'),
  };
}

/**
 * `v1.` + HMAC-SHA256(exportCheckKey, a constant), hex: equal for two configurations exactly when their peppers are
 * equal, so `store import` can refuse a file whose hashes would never verify here. It reveals nothing of the pepper
 * or of the other keys (HKDF keys are independent), but like any keyed hash it lets whoever holds the file test
 * guesses at the pepper: a pepper must be random, as the generated one (32 random bytes) is.
 */
export function pepperCheck(keys: PepperKeys): string {
  return `v1.${createHmac('sha256', keys.exportCheckKey).update('passgate store export: pepper check').digest('hex')}`;
}

/** Constant-time comparison of two pepper checks. */
export function samePepperCheck(a: string, b: string): boolean {
  const [x, y] = [Buffer.from(a), Buffer.from(b)];
  return x.length === y.length && timingSafeEqual(x, y);
}
