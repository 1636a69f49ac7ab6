import { X509Certificate, createPrivateKey, type KeyObject } from 'node:crypto';
import { readFile } from 'node:fs/promises';
import { basename } from 'node:path';
import { createSecureContext } from 'node:tls';
import { GatewayError } from '../core/gateway-error.js';

/** Where a certificate pair comes from, and the config keys an error about each file names. */
export interface CertificateSource {
  certFile: string;
  keyFile: string;
  /** e.g. `tls.certificates[0].cert_file` */
  certConfigKey: string;
  keyConfigKey: string;
}

/** A certificate pair read from disk and checked: parsed, key matching, usable by OpenSSL. */
export interface LoadedCertificate {
  readonly source: CertificateSource;
  /** PEM as read: the leaf, then any intermediates, served as the chain. */
  readonly cert: string;
  /** PEM private key. */
  readonly key: string;
  /** The subject CN, else the first SAN: a label for logs and the expiry metric. */
  readonly name: string;
  /** The names SNI may choose it for: its SAN DNS names, or its CN when it has no SAN (RFC 6125 §6.4.4). */
  readonly dnsNames: readonly string[];
  readonly notAfter: Date;
}

/**
 * Reads and checks one pair. Every problem is PG_CONFIG_INVALID naming the file's config key, so a typo or a
 * half-finished renewal stops the start (or, on reload, keeps the previous certificates) with a message that
 * says which file to fix.
 */
export async function loadCertificate(source: CertificateSource): Promise<LoadedCertificate> {
  const cert = await readText(source.certFile, source.certConfigKey, 'certificate');
  const key = await readText(source.keyFile, source.keyConfigKey, 'private key');

  let leaf: X509Certificate;
  try {
    // Parses the first PEM block: the leaf, by convention (RFC 5246 §7.4.2: the sender's certificate comes first).
    leaf = new X509Certificate(cert);
  } catch (cause) {
    throw invalid(source.certConfigKey, `${source.certFile} is not a PEM certificate`, cause);
  }
  let privateKey: KeyObject;
  try {
    privateKey = createPrivateKey(key);
  } catch (cause) {
    throw invalid(source.keyConfigKey, `${source.keyFile} is not an unencrypted PEM private key`, cause);
  }
  if (!leaf.checkPrivateKey(privateKey)) {
    throw invalid(source.keyConfigKey, `${source.keyFile} is not the private key of ${source.certFile} (${source.certConfigKey})`);
  }
  try {
    // What OpenSSL itself refuses (a key too weak for its security level, a broken chain block) fails here, at load.
    createSecureContext({ cert, key });
  } catch (cause) {
    throw invalid(source.certConfigKey, `${source.certFile} cannot be served: ${(cause as Error).message}`, cause);
  }

  const names = certificateNames(leaf);
  return {
    source,
    cert,
    key,
    name: names.commonName ?? names.dnsNames[0] ?? names.otherNames[0] ?? basename(source.certFile),
    dnsNames: names.hasSubjectAltName ? names.dnsNames : names.commonName ? [names.commonName] : [],
    notAfter: new Date(leaf.validTo),
  };
}

interface CertificateNames {
  commonName: string | undefined;
  hasSubjectAltName: boolean;
  dnsNames: string[];
  /** SAN entries of other types (IP Address:..., email:...), as Node prints them. */
  otherNames: string[];
}

/**
 * Node prints the SAN as `DNS:a.example, IP Address:127.0.0.1` and the subject as `CN=a\nO=b`; it quotes values
 * with separators in them (CVE-2021-44532), which a DNS name never has, so quoted entries are skipped.
 */
function certificateNames(leaf: X509Certificate): CertificateNames {
  const commonName = leaf.subject
    .split('\n')
    .find((line) => line.startsWith('CN='))
    ?.slice(3);
  const entries = leaf.subjectAltName?.split(', ') ?? [];
  return {
    commonName: commonName && !commonName.startsWith('"') ? commonName : undefined,
    hasSubjectAltName: leaf.subjectAltName !== undefined,
    dnsNames: entries.filter((e) => e.startsWith('DNS:') && !e.startsWith('DNS:"')).map((e) => e.slice(4)),
    otherNames: entries.filter((e) => !e.startsWith('DNS:')),
  };
}

async function readText(path: string, configKey: string, what: string): Promise<string> {
  try {
    return await readFile(path, 'utf8');
  } catch (cause) {
    throw invalid(configKey, `cannot read the ${what} ${path}: ${(cause as NodeJS.ErrnoException).code ?? (cause as Error).message}`, cause);
  }
}

function invalid(configKey: string, detail: string, cause?: unknown): GatewayError {
  return new GatewayError('PG_CONFIG_INVALID', `${configKey}: ${detail}`, cause === undefined ? undefined : { cause });
}
