import { createSecureContext, type SecureContext, type TlsOptions } from 'node:tls';
import type { TlsConfig } from '../config/config-schema.js';
import type { EventLogger } from '../core/event-logger.js';
import { CertificateWatcher } from './certificate-watcher.js';
import { loadCertificate, type CertificateSource, type LoadedCertificate } from './loaded-certificate.js';
import { ensureSelfSignedCertificate } from './self-signed-certificate.js';
import { ServerNameIndex } from './server-name-index.js';
import { tlsVersionOptions, type TlsVersion } from './tls-version-options.js';

const DAY_MS = 86_400_000;
/** A certificate this close to its expiry (or past it) is warned about at every open and reload. */
const EXPIRY_WARNING_DAYS = 14;
/** The listener schema's default min_tls_version, for callers that do not say. */
const DEFAULT_MIN_VERSION: TlsVersion = 'TLSv1.2';

type SniCallback = (servername: string, cb: (error: Error | null, context?: SecureContext) => void) => void;

/** One consistent set of certificates: swapped whole on reload, never changed in place. */
class CertificateSet {
  readonly index: ServerNameIndex;
  /** Secure contexts by certificate and listener version, built on first use. */
  private readonly contexts = new Map<string, SecureContext>();

  constructor(readonly certificates: readonly LoadedCertificate[]) {
    this.index = new ServerNameIndex(certificates.map((c) => c.dnsNames));
  }

  /** The certificate for `servername`; the first (the default) when none matches or the client sent no name. */
  select(servername: string | undefined): LoadedCertificate {
    return this.certificates[this.index.lookup(servername) ?? 0]!;
  }

  context(certificate: LoadedCertificate, minVersion: TlsVersion): SecureContext {
    const key = `${this.certificates.indexOf(certificate)}/${minVersion}`;
    let context = this.contexts.get(key);
    if (!context) {
      context = createSecureContext({ key: certificate.key, cert: certificate.cert, ...tlsVersionOptions(minVersion) });
      this.contexts.set(key, context);
    }
    return context;
  }

  sameAs(other: CertificateSet): boolean {
    return (
      this.certificates.length === other.certificates.length &&
      this.certificates.every((c, i) => c.cert === other.certificates[i]!.cert && c.key === other.certificates[i]!.key)
    );
  }
}

/**
 * The certificates both listeners present: the configured PEM pairs (the first is the default, the others are
 * chosen by SNI), or a generated self-signed one when none is configured. Handshakes always read the current set,
 * so a reload takes effect for the next handshake without a restart; a reload that fails keeps the previous set.
 *
 * Clients that send no SNI (old devices, connections by IP address) get the default certificate of the server's
 * own context, which SNICallback never sees: a `tls.Server` takes a reload through `onChange` →
 * `server.setSecureContext(certs.serverOptions(version))`; a STARTTLS upgrade that builds its TLSSocket per
 * connection from `secureContext()` or `serverOptions()` is always current.
 */
export class TlsCertificates {
  private current: CertificateSet;
  private watcher: CertificateWatcher | null = null;
  private reloads: Promise<boolean> = Promise.resolve(true);
  private readonly changeListeners = new Set<() => void>();
  private closed = false;

  private constructor(
    private readonly config: TlsConfig,
    private readonly dataDir: string,
    private readonly log: EventLogger,
    initial: CertificateSet,
  ) {
    this.current = initial;
  }

  /** Loads every configured pair (or the self-signed one); a missing, unreadable or mismatched file is PG_CONFIG_INVALID. */
  static async open(config: TlsConfig, dataDir: string, log: EventLogger): Promise<TlsCertificates> {
    const set = await readCertificates(config, dataDir, log);
    if (config.certificates.length === 0) {
      const generated = set.certificates[0]!;
      log.warn(
        { certFile: generated.source.certFile, names: generated.dnsNames, notAfter: generated.notAfter },
        'serving a self-signed certificate; set tls.certificates for devices that check certificates',
      );
    }
    warnIfExpiring(set, log);
    return new TlsCertificates(config, dataDir, log, set);
  }

  /** Node's `SNICallback` for listeners at the default min_tls_version; `serverOptions()` gives one per version. */
  readonly sniCallback: SniCallback = (servername, cb) => this.answerSni(servername, cb, DEFAULT_MIN_VERSION);

  /** The current secure context for `servername` (the default certificate when it matches none). */
  secureContext(servername?: string, minVersion: TlsVersion = DEFAULT_MIN_VERSION): SecureContext {
    return this.current.context(this.current.select(servername), minVersion);
  }

  /**
   * Options for `tls.createServer` or a server-side `TLSSocket` of a listener accepting `minVersion` and newer:
   * the default pair as key/cert, an SNICallback reading the current set, and for TLSv1/TLSv1.1 the lowered
   * OpenSSL security level those versions need (see tlsVersionOptions). `secureContext` is the default pair's
   * cached context: a `TLSSocket` uses it instead of building one from key/cert per connection (`tls.createServer`
   * ignores it and builds its own once).
   */
  serverOptions(minVersion: TlsVersion): TlsOptions {
    const fallback = this.current.select(undefined);
    return {
      ...tlsVersionOptions(minVersion),
      key: fallback.key,
      cert: fallback.cert,
      secureContext: this.current.context(fallback, minVersion),
      SNICallback: (servername, cb) => this.answerSni(servername, cb, minVersion),
    };
  }

  /** Each certificate's name (subject CN, else first SAN) and expiry, for the expiry metric. */
  expiries(): { name: string; notAfter: Date }[] {
    return this.current.certificates.map((c) => ({ name: c.name, notAfter: c.notAfter }));
  }

  /** Calls `listener` after each reload that changed the certificates. Returns the unsubscribe function. */
  onChange(listener: () => void): () => void {
    this.changeListeners.add(listener);
    return () => this.changeListeners.delete(listener);
  }

  /**
   * Reads the files again (SIGHUP, a watch event). Any error keeps the previous certificates in service, is
   * logged, and returns false: a half-written renewal must not take the listeners down. Reloads run one at a time.
   */
  reload(): Promise<boolean> {
    const run = this.reloads.then(() => this.reloadNow());
    this.reloads = run;
    return run;
  }

  /** With tls.watch, reloads when the certificate files change (debounced); without it, does nothing. */
  watch(): void {
    if (!this.config.watch || this.closed || this.watcher) return;
    this.watcher = new CertificateWatcher(() => void this.reload(), this.log);
    this.watcher.watch(this.watchedFiles());
  }

  /** Stops watching. Idempotent; the certificates stay usable for connections still open. */
  close(): void {
    this.closed = true;
    this.watcher?.close();
    this.watcher = null;
    this.changeListeners.clear();
  }

  private answerSni(servername: string, cb: (error: Error | null, context?: SecureContext) => void, minVersion: TlsVersion): void {
    let context: SecureContext;
    try {
      context = this.secureContext(servername, minVersion);
    } catch (error) {
      cb(error as Error);
      return;
    }
    cb(null, context);
  }

  private async reloadNow(): Promise<boolean> {
    let next: CertificateSet;
    try {
      next = await readCertificates(this.config, this.dataDir, this.log);
    } catch (error) {
      this.log.error({ cause: (error as Error).message }, 'certificate reload failed');
      return false;
    }
    // Folders may have changed with the files (a symlink now pointing elsewhere).
    this.watcher?.watch(this.watchedFiles());
    if (next.sameAs(this.current)) return true;
    this.current = next;
    this.log.info({ certificates: next.certificates.map((c) => ({ name: c.name, notAfter: c.notAfter })) }, 'certificates reloaded');
    warnIfExpiring(next, this.log);
    for (const listener of this.changeListeners) {
      try {
        listener();
      } catch (error) {
        this.log.error({ cause: (error as Error).message }, 'certificate change listener failed');
      }
    }
    return true;
  }

  private watchedFiles(): string[] {
    return this.current.certificates.flatMap((c) => [c.source.certFile, c.source.keyFile]);
  }
}

async function readCertificates(config: TlsConfig, dataDir: string, log: EventLogger): Promise<CertificateSet> {
  const sources: CertificateSource[] =
    config.certificates.length > 0
      ? config.certificates.map((pair, i) => ({
          certFile: pair.cert_file,
          keyFile: pair.key_file,
          certConfigKey: `tls.certificates[${i}].cert_file`,
          keyConfigKey: `tls.certificates[${i}].key_file`,
        }))
      : [{ ...(await ensureSelfSignedCertificate(dataDir, log)), certConfigKey: 'data_dir', keyConfigKey: 'data_dir' }];
  return new CertificateSet(await Promise.all(sources.map(loadCertificate)));
}

/** An expired certificate is still served (refusing to start would not help the devices), but loudly. */
function warnIfExpiring(set: CertificateSet, log: EventLogger, now = Date.now()): void {
  for (const c of set.certificates) {
    const details = { name: c.name, certFile: c.source.certFile, notAfter: c.notAfter };
    const daysLeft = Math.floor((c.notAfter.getTime() - now) / DAY_MS);
    if (c.notAfter.getTime() <= now) log.warn(details, 'certificate has expired');
    else if (daysLeft < EXPIRY_WARNING_DAYS) log.warn({ ...details, daysLeft }, 'certificate expires soon');
  }
}
