import { DEFAULT_CIPHERS } from 'node:tls';
import type { ListenerConfig } from '../config/config-schema.js';

/** The oldest TLS version a listener accepts (`min_tls_version`). */
export type TlsVersion = ListenerConfig['min_tls_version'];

export interface TlsVersionOptions {
  minVersion: TlsVersion;
  /** Set only for listeners that accept TLS 1.0/1.1; otherwise Node's default cipher list and security level hold. */
  ciphers?: string;
}

/**
 * The protocol options of a listener that accepts `minVersion` and newer.
 *
 * TLS 1.0 and 1.1 (deprecated by RFC 8996) sign the handshake with SHA-1 (ECDSA) or MD5+SHA-1 (RSA), which OpenSSL 3
 * refuses at its default security level 1: the server then aborts with alert 80 "internal error". Security level 0
 * allows them, so a listener whose min_tls_version is below TLSv1.2 lowers the level, keeping Node's cipher list
 * (ECDHE and AES-GCM first, then AES-CBC-SHA for the old clients; no RC4, no 3DES). Level 0 also lifts the key-size
 * floor, which is harmless here: the certificates are the operator's. Checked with Node 20's bundled OpenSSL 3.0:
 * a client capped at TLSv1 handshakes (test/integration/tls-certificates.test.ts).
 *
 * A client must lower its own level as well: Node's client at level 1 refuses the server's SHA-1 signature
 * (ERR_SSL_LEGACY_SIGALG_DISALLOWED_OR_UNSUPPORTED); real old devices have no such check. Node 20's OpenSSL offers
 * no 3DES or RC4 at any level, so a client that knows nothing newer cannot connect at all.
 *
 * The contexts SNI switches to are built with the same options as the listener's own, so its settings hold
 * whichever certificate is chosen.
 */
export function tlsVersionOptions(minVersion: TlsVersion): TlsVersionOptions {
  if (minVersion === 'TLSv1' || minVersion === 'TLSv1.1') return { minVersion, ciphers: `${DEFAULT_CIPHERS}:@SECLEVEL=0` };
  return { minVersion };
}
