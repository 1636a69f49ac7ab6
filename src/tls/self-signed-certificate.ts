import { X509Certificate, createPrivateKey, randomBytes, webcrypto } from 'node:crypto';
import { chmod, mkdir, readFile, rename, writeFile } from 'node:fs/promises';
import { hostname } from 'node:os';
import { join } from 'node:path';
import type { EventLogger } from '../core/event-logger.js';
import { GatewayError } from '../core/gateway-error.js';

const DAY_MS = 86_400_000;
/** A generated certificate lasts a year (under the 398 days browsers and Apple devices accept for a leaf). */
const VALIDITY_DAYS = 365;
/** It is replaced on a start (or reload) this close to its expiry, so it never expires while in use. */
const RENEW_BEFORE_DAYS = 30;

export interface SelfSignedOptions {
  commonName: string;
  dnsNames?: readonly string[];
  ipAddresses?: readonly string[];
  notBefore?: Date;
  notAfter?: Date;
  /** rsa (2048 bits, the default): old devices from the TLS 1.0 era know no ECDSA certificates. ecdsa: P-256. */
  keyType?: 'rsa' | 'ecdsa';
}

export interface PemPair {
  cert: string;
  key: string;
}

/** Creates a self-signed server certificate (SHA-256, serverAuth) and its PKCS#8 key, as PEM. */
export async function generateSelfSignedCertificate(options: SelfSignedOptions): Promise<PemPair> {
  // @peculiar/x509 requires a global Reflect metadata polyfill (its README). Both load only here, so a gateway
  // with configured certificates never loads them.
  await import('reflect-metadata');
  const x509 = await import('@peculiar/x509');
  const crypto = webcrypto;

  const rsa = (options.keyType ?? 'rsa') === 'rsa';
  const algorithm = rsa
    ? { name: 'RSASSA-PKCS1-v1_5', modulusLength: 2048, publicExponent: new Uint8Array([1, 0, 1]), hash: 'SHA-256' }
    : { name: 'ECDSA', namedCurve: 'P-256', hash: 'SHA-256' };
  const keys = await crypto.subtle.generateKey(algorithm, true, ['sign', 'verify']);
  const serial = randomBytes(16);
  serial[0]! &= 0x7f; // RFC 5280 §4.1.2.2: a positive serial number
  const notBefore = options.notBefore ?? new Date(Date.now() - 3_600_000); // an hour back, for clients whose clock lags
  const names = [
    ...(options.dnsNames ?? []).map((value) => ({ type: 'dns' as const, value })),
    ...(options.ipAddresses ?? []).map((value) => ({ type: 'ip' as const, value })),
  ];
  const usage = rsa
    ? x509.KeyUsageFlags.digitalSignature | x509.KeyUsageFlags.keyEncipherment
    : x509.KeyUsageFlags.digitalSignature;

  const cert = await x509.X509CertificateGenerator.createSelfSigned(
    {
      serialNumber: serial.toString('hex'),
      name: [{ CN: [options.commonName] }],
      notBefore,
      notAfter: options.notAfter ?? new Date(notBefore.getTime() + VALIDITY_DAYS * DAY_MS),
      keys,
      signingAlgorithm: algorithm,
      extensions: [
        new x509.BasicConstraintsExtension(false, undefined, true),
        new x509.KeyUsagesExtension(usage, true),
        new x509.ExtendedKeyUsageExtension([x509.ExtendedKeyUsage.serverAuth]),
        ...(names.length > 0 ? [new x509.SubjectAlternativeNameExtension(names)] : []),
      ],
    },
    crypto,
  );
  const pkcs8 = Buffer.from(await crypto.subtle.exportKey('pkcs8', keys.privateKey));
  const key = createPrivateKey({ key: pkcs8, format: 'der', type: 'pkcs8' }).export({ type: 'pkcs8', format: 'pem' }) as string;
  return { cert: cert.toString('pem'), key };
}

export interface SelfSignedFiles {
  certFile: string;
  keyFile: string;
}

/**
 * The certificate served when tls.certificates is empty: `<data_dir>/tls/self-signed.crt` and `.key`, generated on
 * the first start for this machine's name, `localhost`, 127.0.0.1 and ::1, and reused while it is valid for more
 * than RENEW_BEFORE_DAYS, so devices that were told to trust it keep trusting it. A change of host name alone does
 * not replace it, for the same reason. The folder is 0700 and the key 0600: readable by passgate's user only.
 */
export async function ensureSelfSignedCertificate(dataDir: string, log: EventLogger, now = new Date()): Promise<SelfSignedFiles> {
  const folder = join(dataDir, 'tls');
  const files = { certFile: join(folder, 'self-signed.crt'), keyFile: join(folder, 'self-signed.key') };
  try {
    await mkdir(folder, { recursive: true, mode: 0o700 });
    await chmod(folder, 0o700); // mkdir keeps the mode of a folder that already exists
    const reason = await replacementReason(files, now);
    if (reason === null) {
      await chmod(files.keyFile, 0o600);
      return files;
    }
    const host = hostname().toLowerCase();
    const dnsNames = host && host !== 'localhost' ? [host, 'localhost'] : ['localhost'];
    const pair = await generateSelfSignedCertificate({
      // X.520 caps a CN at 64 characters; the SAN carries the full name either way.
      commonName: host && host.length <= 64 ? host : 'localhost',
      dnsNames,
      ipAddresses: ['127.0.0.1', '::1'],
      notBefore: new Date(now.getTime() - 3_600_000),
      notAfter: new Date(now.getTime() + VALIDITY_DAYS * DAY_MS),
    });
    // The key first: a crash between the two renames leaves a mismatched pair, which the next start replaces.
    await writeAtomically(files.keyFile, pair.key, 0o600);
    await writeAtomically(files.certFile, pair.cert, 0o644);
    log.info({ certFile: files.certFile, reason, names: dnsNames }, 'self-signed certificate generated');
    return files;
  } catch (cause) {
    throw new GatewayError('PG_CONFIG_INVALID', `data_dir: cannot write the self-signed certificate into ${folder}: ${(cause as Error).message}`, { cause });
  }
}

/** Why the files on disk cannot be reused, or null when they can. */
async function replacementReason(files: SelfSignedFiles, now: Date): Promise<string | null> {
  let cert: string;
  let key: string;
  try {
    [cert, key] = await Promise.all([readFile(files.certFile, 'utf8'), readFile(files.keyFile, 'utf8')]);
  } catch {
    return 'missing';
  }
  try {
    const leaf = new X509Certificate(cert);
    if (!leaf.checkPrivateKey(createPrivateKey(key))) return 'mismatched';
    return new Date(leaf.validTo).getTime() - now.getTime() > RENEW_BEFORE_DAYS * DAY_MS ? null : 'expiring';
  } catch {
    return 'unreadable';
  }
}

async function writeAtomically(path: string, data: string, mode: number): Promise<void> {
  const temporary = `${path}.${process.pid}.tmp`;
  await writeFile(temporary, data, { mode });
  await chmod(temporary, mode); // writeFile's mode applies only when it creates the file
  await rename(temporary, path);
}
