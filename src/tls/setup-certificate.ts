import { X509Certificate } from 'node:crypto';
import { readFileSync } from 'node:fs';
import type { SetupCertificate } from '../core/setup-sheet.js';

/**
 * What devices will be shown for `host` (the setup sheet's note): no configured certificate means passgate's
 * self-signed one; else the first (default) configured certificate, whether it is self-signed, whether it names
 * `host` (RFC 6125 matching by node:crypto's checkHost), and its issuer's common name. Reads the file each call
 * (a renewal shows at once); never throws.
 */
export function describeSetupCertificate(certificates: readonly { cert_file: string }[], host: string): SetupCertificate {
  const first = certificates[0];
  if (first === undefined) return { kind: 'self-signed' };
  try {
    const leaf = new X509Certificate(readFileSync(first.cert_file));
    const issuer = /(?:^|\n)CN=([^\n]*)/.exec(leaf.issuer)?.[1] ?? null;
    return {
      kind: 'configured',
      selfSigned: leaf.checkIssued(leaf) && leaf.verify(leaf.publicKey),
      coversHost: leaf.checkHost(host) !== undefined,
      issuer,
      validTo: Date.parse(leaf.validTo),
    };
  } catch (error) {
    return { kind: 'unreadable', error: (error as Error).message };
  }
}
