import { X509Certificate } from 'node:crypto';
import { readFile } from 'node:fs/promises';
import { join } from 'node:path';
import type { Config } from '../config/config-schema.js';
import { loadCertificate } from '../tls/loaded-certificate.js';
import { fail, pass, skip, warn, type CheckResult } from './doctor-report.js';

const DAY_MS = 86_400_000;
/** The same threshold at which `serve` starts warning about a certificate (tls-certificates.ts). */
const EXPIRY_WARNING_DAYS = 14;

function expiry(name: string, label: string, notAfter: Date, now: number): CheckResult {
  const days = Math.floor((notAfter.getTime() - now) / DAY_MS);
  const when = notAfter.toISOString().slice(0, 10);
  if (notAfter.getTime() <= now) {
    return fail(name, `${label} expired on ${when}`, 'Clients that check certificates refuse the connection. Renew it and replace the files; passgate reloads them on change or SIGHUP.');
  }
  if (days < EXPIRY_WARNING_DAYS) return warn(name, `${label} expires in ${days} days (${when})`, 'Renew it soon; passgate reloads the files on change or SIGHUP.');
  return pass(name, `${label} valid until ${when} (${days} days)`);
}

/**
 * Each configured certificate pair loads exactly as the listeners load it (parsed, key matching, accepted by
 * OpenSSL) and is not expired; without tls.certificates, the self-signed fallback is a warning.
 */
export async function checkTls(config: Config, now = Date.now()): Promise<CheckResult[]> {
  if (!config.smtp.enabled && !config.imap.enabled) return [skip('tls', 'smtp and imap are both disabled')];
  if (config.tls.certificates.length === 0) {
    const file = join(config.data_dir, 'tls', 'self-signed.crt');
    const hint = 'Devices that check certificates refuse a self-signed one; set tls.certificates to a certificate for the name devices connect to.';
    let pem: string;
    try {
      pem = await readFile(file, 'utf8');
    } catch {
      return [warn('tls', 'no tls.certificates: passgate generates a self-signed certificate at its first start', hint)];
    }
    try {
      const result = expiry('tls', `self-signed certificate ${file}`, new Date(new X509Certificate(pem).validTo), now);
      return [result.status === 'pass' ? warn('tls', `${result.detail}; self-signed`, hint) : result];
    } catch {
      return [warn('tls', `self-signed certificate ${file} is unreadable; passgate replaces it at start`, hint)];
    }
  }
  const results: CheckResult[] = [];
  for (const [i, pair] of config.tls.certificates.entries()) {
    const name = config.tls.certificates.length === 1 ? 'tls' : `tls [${i}]`;
    try {
      const loaded = await loadCertificate({
        certFile: pair.cert_file,
        keyFile: pair.key_file,
        certConfigKey: `tls.certificates[${i}].cert_file`,
        keyConfigKey: `tls.certificates[${i}].key_file`,
      });
      results.push(expiry(name, `${loaded.name} (${pair.cert_file})`, loaded.notAfter, now));
    } catch (error) {
      results.push(fail(name, (error as Error).message, 'Point the key named at a readable PEM file; the key file must hold the private key of the certificate.'));
    }
  }
  return results;
}
