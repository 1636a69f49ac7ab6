import { hkdfSync } from 'node:crypto';

export interface PepperKeys {
  /** Key of the credential selector's HMAC. */
  selectorKey: Buffer;
  /** Passed to argon2 as its `secret`, so a stolen database alone cannot be brute-forced. */
  hashSecret: Buffer;
  /** Key of the wrong-password fingerprint used for distinct-failure counting. */
  fingerprintKey: Buffer;
}

/** Derives independent keys from the operator's pepper (HKDF-SHA256, RFC 5869), one per purpose. */
export function derivePepperKeys(pepper: string): PepperKeys {
  const derive = (info: string) => Buffer.from(hkdfSync('sha256', pepper, 'passgate', info, 32));
  return { selectorKey: derive('selector-v1'), hashSecret: derive('argon2-secret-v1'), fingerprintKey: derive('fingerprint-v1') };
}
