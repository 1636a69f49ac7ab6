import assert from 'node:assert/strict';
import { X509Certificate } from 'node:crypto';
import { mkdtempSync, readFileSync, renameSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { createServer as createTcpServer, type Server as TcpServer } from 'node:net';
import { hostname, tmpdir } from 'node:os';
import { join } from 'node:path';
import tls from 'node:tls';
import { after, before, describe, it } from 'node:test';
import type { TlsConfig } from '../../src/config/config-schema.js';
import type { EventLogger } from '../../src/core/event-logger.js';
import { isGatewayError } from '../../src/core/gateway-error.js';
import { generateSelfSignedCertificate, type SelfSignedOptions } from '../../src/tls/self-signed-certificate.js';
import { TlsCertificates } from '../../src/tls/tls-certificates.js';

const DAY_MS = 86_400_000;
const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

interface LogEvent {
  level: 'info' | 'warn' | 'error';
  message: string;
  details: Record<string, unknown>;
}

function recordingLog(): EventLogger & { events: LogEvent[]; messages(level: LogEvent['level']): string[] } {
  const events: LogEvent[] = [];
  const record = (level: LogEvent['level']) => (details: object, message: string) =>
    void events.push({ level, message, details: details as Record<string, unknown> });
  return {
    events,
    info: record('info'),
    warn: record('warn'),
    error: record('error'),
    messages: (level) => events.filter((e) => e.level === level).map((e) => e.message),
  };
}

interface PairFiles {
  certFile: string;
  keyFile: string;
  cert: string;
  key: string;
}

/** A test certificate written to `<dir>/<base>.crt` and `.key` (ECDSA unless asked: fast to generate). */
async function writePair(dir: string, base: string, options: Partial<SelfSignedOptions> & { dnsNames: string[] }): Promise<PairFiles> {
  const pem = await generateSelfSignedCertificate({ commonName: options.dnsNames[0]!, keyType: 'ecdsa', ...options });
  const files = { certFile: join(dir, `${base}.crt`), keyFile: join(dir, `${base}.key`) };
  writeFileSync(files.keyFile, pem.key, { mode: 0o600 });
  writeFileSync(files.certFile, pem.cert);
  return { ...files, ...pem };
}

/** Replaces a pair the way renewal tools do: write beside it, then rename over it. */
function replaceByRename(target: PairFiles, next: { cert: string; key: string }): void {
  writeFileSync(`${target.keyFile}.new`, next.key, { mode: 0o600 });
  writeFileSync(`${target.certFile}.new`, next.cert);
  renameSync(`${target.keyFile}.new`, target.keyFile);
  renameSync(`${target.certFile}.new`, target.certFile);
}

const fingerprint = (pem: string) => new X509Certificate(pem).fingerprint256;
const config = (pairs: PairFiles[], watch = false): TlsConfig => ({
  certificates: pairs.map((p) => ({ cert_file: p.certFile, key_file: p.keyFile })),
  watch,
});

/** A TLS listener on 127.0.0.1 that completes handshakes and closes. */
async function listen(options: tls.TlsOptions): Promise<{ server: tls.Server; port: number; close(): Promise<void> }> {
  const sockets = new Set<tls.TLSSocket>();
  const server = tls.createServer(options, (socket) => {
    sockets.add(socket);
    socket.on('error', () => {});
    socket.on('close', () => sockets.delete(socket));
    socket.end();
  });
  server.on('tlsClientError', () => {});
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const port = (server.address() as { port: number }).port;
  return {
    server,
    port,
    close: () => {
      for (const socket of sockets) socket.destroy();
      return new Promise((resolve) => server.close(() => resolve()));
    },
  };
}

/**
 * A listener that upgrades each accepted TCP socket with its own server-side TLSSocket, as a STARTTLS upgrade does
 * (here at once, with no plaintext dialogue before it): it reads the options anew for every connection.
 */
async function listenUpgrading(options: () => tls.TlsOptions): Promise<{ port: number; close(): Promise<void> }> {
  const sockets = new Set<tls.TLSSocket>();
  const server: TcpServer = createTcpServer((raw) => {
    const secure = new tls.TLSSocket(raw, { isServer: true, ...options() });
    sockets.add(secure);
    secure.on('error', () => {});
    secure.on('close', () => sockets.delete(secure));
    secure.on('secure', () => secure.end());
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  return {
    port: (server.address() as { port: number }).port,
    close: () => {
      for (const socket of sockets) socket.destroy();
      return new Promise((resolve) => server.close(() => resolve()));
    },
  };
}

interface Handshake {
  fingerprint: string;
  protocol: string | null;
  authorized: boolean;
  /** tls.checkServerIdentity for the name asked for: undefined when the certificate is valid for it. */
  identityError: Error | undefined;
}

function handshake(port: number, options: tls.ConnectionOptions = {}): Promise<Handshake> {
  return new Promise((resolve, reject) => {
    const socket = tls.connect({ host: '127.0.0.1', port, rejectUnauthorized: false, ...options }, () => {
      const peer = socket.getPeerCertificate();
      resolve({
        fingerprint: peer.fingerprint256,
        protocol: socket.getProtocol(),
        authorized: socket.authorized,
        identityError: options.servername ? tls.checkServerIdentity(options.servername, peer) : undefined,
      });
      socket.destroy();
    });
    socket.setTimeout(5000, () => socket.destroy(new Error('handshake timed out')));
    socket.on('error', reject);
  });
}

/** Handshakes until `expected` is served, for at most `ms`. */
async function waitForFingerprint(port: number, servername: string, expected: string, ms = 5000): Promise<void> {
  const deadline = Date.now() + ms;
  for (;;) {
    if ((await handshake(port, { servername })).fingerprint === expected) return;
    if (Date.now() > deadline) assert.fail(`certificate ${expected} not served within ${ms} ms`);
    await sleep(100);
  }
}

const configError = (key: string, detail: RegExp) => (error: unknown) => {
  assert.ok(isGatewayError(error, 'PG_CONFIG_INVALID'), String(error));
  assert.ok(error.message.startsWith(`${key}: `), error.message);
  assert.match(error.message, detail);
  return true;
};

describe('TlsCertificates over real TLS handshakes on 127.0.0.1', () => {
  let dir: string;
  let main: PairFiles;
  let mail: PairFiles;
  let wild: PairFiles;

  before(async () => {
    dir = mkdtempSync(join(tmpdir(), 'passgate-tls-'));
    // The default certificate is RSA, as old devices need; the others ECDSA.
    main = await writePair(dir, 'main', { dnsNames: ['gateway.test'], keyType: 'rsa' });
    mail = await writePair(dir, 'mail', { dnsNames: ['mail.example.org', 'smtp.example.org'] });
    wild = await writePair(dir, 'wild', { dnsNames: ['*.wild.test'] });
  });
  after(() => rmSync(dir, { recursive: true, force: true }));

  describe('one listener with three certificates', () => {
    let certs: TlsCertificates;
    let listener: Awaited<ReturnType<typeof listen>>;

    before(async () => {
      certs = await TlsCertificates.open(config([main, mail, wild]), dir, recordingLog());
      listener = await listen(certs.serverOptions('TLSv1.2'));
    });
    after(async () => {
      certs.close();
      await listener.close();
    });

    it('serves the default certificate without SNI and for an unknown name', async () => {
      assert.equal((await handshake(listener.port)).fingerprint, fingerprint(main.cert));
      assert.equal((await handshake(listener.port, { servername: 'other.test' })).fingerprint, fingerprint(main.cert));
    });

    it('picks the certificate whose SAN matches the name asked for, verified against it as CA', async () => {
      const served = await handshake(listener.port, { servername: 'smtp.example.org', ca: mail.cert, rejectUnauthorized: true });
      assert.equal(served.fingerprint, fingerprint(mail.cert));
      assert.equal(served.authorized, true);
      assert.equal(served.identityError, undefined);
      assert.equal((await handshake(listener.port, { servername: 'MAIL.example.org' })).fingerprint, fingerprint(mail.cert));
    });

    it('matches a wildcard for one label only', async () => {
      const served = await handshake(listener.port, { servername: 'imap.wild.test' });
      assert.equal(served.fingerprint, fingerprint(wild.cert));
      assert.equal(served.identityError, undefined);
      assert.equal((await handshake(listener.port, { servername: 'a.b.wild.test' })).fingerprint, fingerprint(main.cert));
    });

    it('lists each certificate with its expiry', () => {
      assert.deepEqual(
        certs.expiries().map((e) => e.name),
        ['gateway.test', 'mail.example.org', '*.wild.test'],
      );
      assert.equal(certs.expiries()[0]!.notAfter.getTime(), new Date(new X509Certificate(main.cert).validTo).getTime());
    });
  });

  describe('protocol versions', () => {
    let certs: TlsCertificates;
    before(async () => {
      certs = await TlsCertificates.open(config([main, mail]), dir, recordingLog());
    });

    it('a TLSv1.2 listener refuses a client capped at TLSv1.1, and accepts TLSv1.2', async () => {
      const listener = await listen(certs.serverOptions('TLSv1.2'));
      try {
        const old = { minVersion: 'TLSv1', maxVersion: 'TLSv1.1', ciphers: 'DEFAULT:@SECLEVEL=0' } as const;
        await assert.rejects(handshake(listener.port, old), /alert protocol version/);
        assert.equal((await handshake(listener.port, { maxVersion: 'TLSv1.2' })).protocol, 'TLSv1.2');
      } finally {
        await listener.close();
      }
    });

    it('a TLSv1.3 listener refuses TLSv1.2', async () => {
      const listener = await listen(certs.serverOptions('TLSv1.3'));
      try {
        await assert.rejects(handshake(listener.port, { maxVersion: 'TLSv1.2' }), /alert protocol version/);
        assert.equal((await handshake(listener.port)).protocol, 'TLSv1.3');
      } finally {
        await listener.close();
      }
    });

    // Node's own client must lower its security level too, or it refuses the SHA-1 handshake signature itself.
    const legacyClient = { minVersion: 'TLSv1', maxVersion: 'TLSv1', ciphers: 'DEFAULT:@SECLEVEL=0' } as const;

    it('a TLSv1 listener completes a real TLS 1.0 handshake, also with an SNI-chosen certificate', async () => {
      const listener = await listen(certs.serverOptions('TLSv1'));
      try {
        const plain = await handshake(listener.port, legacyClient);
        assert.equal(plain.protocol, 'TLSv1');
        assert.equal(plain.fingerprint, fingerprint(main.cert));
        const sni = await handshake(listener.port, { ...legacyClient, servername: 'mail.example.org' });
        assert.equal(sni.protocol, 'TLSv1');
        assert.equal(sni.fingerprint, fingerprint(mail.cert));
        const tls11 = await handshake(listener.port, { ...legacyClient, maxVersion: 'TLSv1.1', minVersion: 'TLSv1.1' });
        assert.equal(tls11.protocol, 'TLSv1.1');
        assert.equal((await handshake(listener.port)).protocol, 'TLSv1.3');
      } finally {
        await listener.close();
      }
    });

    it('without the lowered security level the same TLS 1.0 client fails (why TLSv1 listeners lower it)', async () => {
      const { SNICallback: _sni, ciphers: _ciphers, ...withoutLevel } = certs.serverOptions('TLSv1');
      const listener = await listen(withoutLevel);
      try {
        await assert.rejects(handshake(listener.port, legacyClient), /alert internal error|ALERT_INTERNAL_ERROR/i);
      } finally {
        await listener.close();
      }
    });
  });

  describe('reload and watch', () => {
    it('serves a replaced certificate after reload(), and keeps it when the next replacement is broken', async () => {
      const sub = mkdtempSync(join(dir, 'reload-'));
      const first = await writePair(sub, 'main', { dnsNames: ['gateway.test'] });
      const second = await writePair(sub, 'second', { dnsNames: ['second.test'] });
      const log = recordingLog();
      const certs = await TlsCertificates.open(config([first, second]), sub, log);
      const listener = await listen(certs.serverOptions('TLSv1.2'));
      // Clients without SNI get the server's own context: a tls.Server refreshes it when the certificates change.
      certs.onChange(() => listener.server.setSecureContext(certs.serverOptions('TLSv1.2')));
      const upgrading = await listenUpgrading(() => certs.serverOptions('TLSv1.2'));
      try {
        const renewed = await generateSelfSignedCertificate({ commonName: 'second.test', dnsNames: ['second.test'], keyType: 'ecdsa' });
        const renewedDefault = await generateSelfSignedCertificate({ commonName: 'gateway.test', dnsNames: ['gateway.test'], keyType: 'ecdsa' });
        replaceByRename(second, renewed);
        replaceByRename(first, renewedDefault);
        assert.equal((await handshake(listener.port, { servername: 'second.test' })).fingerprint, fingerprint(second.cert));
        assert.equal((await handshake(upgrading.port)).fingerprint, fingerprint(first.cert));
        assert.equal(await certs.reload(), true);
        assert.equal((await handshake(listener.port, { servername: 'second.test' })).fingerprint, fingerprint(renewed.cert));
        assert.equal((await handshake(listener.port)).fingerprint, fingerprint(renewedDefault.cert));
        assert.equal((await handshake(upgrading.port)).fingerprint, fingerprint(renewedDefault.cert));
        assert.equal((await handshake(upgrading.port, { servername: 'second.test' })).fingerprint, fingerprint(renewed.cert));
        assert.ok(log.messages('info').includes('certificates reloaded'));

        writeFileSync(second.certFile, '-----BEGIN CERTIFICATE-----\nnot base64\n-----END CERTIFICATE-----\n');
        assert.equal(await certs.reload(), false);
        const failure = log.events.find((e) => e.message === 'certificate reload failed');
        assert.match(String(failure?.details.cause), /tls\.certificates\[1\]\.cert_file/);
        assert.equal((await handshake(listener.port, { servername: 'second.test' })).fingerprint, fingerprint(renewed.cert));

        // A key that belongs to another certificate is refused the same way.
        writeFileSync(second.certFile, renewed.cert);
        writeFileSync(second.keyFile, renewedDefault.key);
        assert.equal(await certs.reload(), false);
        assert.equal((await handshake(listener.port, { servername: 'second.test' })).fingerprint, fingerprint(renewed.cert));
        assert.equal((await handshake(upgrading.port)).fingerprint, fingerprint(renewedDefault.cert));
      } finally {
        certs.close();
        await listener.close();
        await upgrading.close();
      }
    });

    it('with watch: true, serves a certificate renewed by rename without being asked, and stops after close()', async () => {
      const sub = mkdtempSync(join(dir, 'watch-'));
      const pair = await writePair(sub, 'watched', { dnsNames: ['watched.test'] });
      const log = recordingLog();
      const certs = await TlsCertificates.open(config([pair], true), sub, log);
      certs.watch();
      const listener = await listen(certs.serverOptions('TLSv1.2'));
      try {
        const renewed = await generateSelfSignedCertificate({ commonName: 'watched.test', dnsNames: ['watched.test'], keyType: 'ecdsa' });
        replaceByRename(pair, renewed);
        await waitForFingerprint(listener.port, 'watched.test', fingerprint(renewed.cert));
        assert.ok(log.messages('info').includes('certificates reloaded'));

        // Written in place, too.
        const again = await generateSelfSignedCertificate({ commonName: 'watched.test', dnsNames: ['watched.test'], keyType: 'ecdsa' });
        writeFileSync(pair.keyFile, again.key);
        writeFileSync(pair.certFile, again.cert);
        await waitForFingerprint(listener.port, 'watched.test', fingerprint(again.cert));

        certs.close();
        certs.close();
        // After close() nothing happens, so there is no event to wait for: a witness watching the same files is.
        // Two renewals, each seen reloaded by the witness: by the second, a watcher still running would long have
        // reloaded the first.
        const witnessLog = recordingLog();
        const witness = await TlsCertificates.open(config([pair], true), sub, witnessLog);
        witness.watch();
        const reloads = () => witnessLog.messages('info').filter((m) => m === 'certificates reloaded').length;
        const witnessed = async (count: number) => {
          for (const until = Date.now() + 10_000; reloads() < count && Date.now() < until; ) await sleep(20);
          assert.equal(reloads(), count, 'the witness saw the renewal');
        };
        try {
          replaceByRename(pair, renewed);
          await witnessed(1);
          replaceByRename(pair, await generateSelfSignedCertificate({ commonName: 'watched.test', dnsNames: ['watched.test'], keyType: 'ecdsa' }));
          await witnessed(2);
        } finally {
          witness.close();
        }
        assert.equal((await handshake(listener.port, { servername: 'watched.test' })).fingerprint, fingerprint(again.cert));
      } finally {
        certs.close();
        await listener.close();
      }
    });
  });

  describe('a self-signed certificate when none is configured', () => {
    it('is generated into <data_dir>/tls with a 0600 key, warned about, valid for localhost, and reused', async () => {
      const dataDir = join(dir, 'data');
      const log = recordingLog();
      const certs = await TlsCertificates.open({ certificates: [], watch: false }, dataDir, log);
      const certFile = join(dataDir, 'tls', 'self-signed.crt');
      const keyFile = join(dataDir, 'tls', 'self-signed.key');
      assert.equal(statSync(keyFile).mode & 0o777, 0o600);
      assert.equal(statSync(join(dataDir, 'tls')).mode & 0o777, 0o700);
      assert.ok(log.messages('warn').some((m) => m.startsWith('serving a self-signed certificate')));
      assert.deepEqual(log.messages('info'), ['self-signed certificate generated']);

      const cert = readFileSync(certFile, 'utf8');
      const leaf = new X509Certificate(cert);
      for (const name of [`DNS:${hostname().toLowerCase()}`, 'DNS:localhost', 'IP Address:127.0.0.1', 'IP Address:0:0:0:0:0:0:0:1']) {
        assert.ok(leaf.subjectAltName?.split(', ').includes(name), `${name} in ${leaf.subjectAltName}`);
      }
      const daysValid = (new Date(leaf.validTo).getTime() - Date.now()) / DAY_MS;
      assert.ok(daysValid > 364 && daysValid < 366, `${daysValid} days`);

      const listener = await listen(certs.serverOptions('TLSv1.2'));
      try {
        const served = await handshake(listener.port, { servername: 'localhost', ca: cert, rejectUnauthorized: true });
        assert.equal(served.authorized, true);
        assert.equal(served.fingerprint, leaf.fingerprint256);
      } finally {
        await listener.close();
      }

      const secondLog = recordingLog();
      const reopened = await TlsCertificates.open({ certificates: [], watch: false }, dataDir, secondLog);
      assert.equal(readFileSync(certFile, 'utf8'), cert);
      assert.deepEqual(secondLog.messages('info'), []);
      assert.equal(reopened.expiries()[0]!.notAfter.getTime(), new Date(leaf.validTo).getTime());
    });

    it('is replaced when it expires within 30 days', async () => {
      const dataDir = join(dir, 'data-expiring');
      const tlsDir = join(dataDir, 'tls');
      await TlsCertificates.open({ certificates: [], watch: false }, dataDir, recordingLog());
      const soon = await generateSelfSignedCertificate({ commonName: 'old', dnsNames: ['localhost'], notAfter: new Date(Date.now() + 10 * DAY_MS), keyType: 'ecdsa' });
      writeFileSync(join(tlsDir, 'self-signed.key'), soon.key);
      writeFileSync(join(tlsDir, 'self-signed.crt'), soon.cert);

      const log = recordingLog();
      const certs = await TlsCertificates.open({ certificates: [], watch: false }, dataDir, log);
      const generated = log.events.find((e) => e.message === 'self-signed certificate generated');
      assert.equal(generated?.details.reason, 'expiring');
      assert.notEqual(readFileSync(join(tlsDir, 'self-signed.crt'), 'utf8'), soon.cert);
      assert.ok(certs.expiries()[0]!.notAfter.getTime() > Date.now() + 300 * DAY_MS);
      assert.deepEqual(log.messages('warn').filter((m) => m.startsWith('certificate')), []);
    });
  });

  describe('configuration errors name the key', () => {
    it('a missing certificate file', async () => {
      const missing = { ...mail, certFile: join(dir, 'nope.crt') };
      await assert.rejects(TlsCertificates.open(config([main, missing]), dir, recordingLog()), configError('tls.certificates[1].cert_file', /nope\.crt: ENOENT/));
    });

    it('a key that is not the certificate\'s', async () => {
      const crossed = { ...main, keyFile: mail.keyFile };
      await assert.rejects(TlsCertificates.open(config([crossed]), dir, recordingLog()), configError('tls.certificates[0].key_file', /is not the private key of/));
    });

    it('files that are not PEM', async () => {
      const garbage = join(dir, 'garbage.pem');
      writeFileSync(garbage, 'hello\n');
      await assert.rejects(TlsCertificates.open(config([{ ...main, certFile: garbage }]), dir, recordingLog()), configError('tls.certificates[0].cert_file', /not a PEM certificate/));
      await assert.rejects(TlsCertificates.open(config([{ ...main, keyFile: garbage }]), dir, recordingLog()), configError('tls.certificates[0].key_file', /not an unencrypted PEM private key/));
    });
  });

  describe('expiry warnings', () => {
    it('warn at open about a certificate expiring within 14 days and one already expired', async () => {
      const sub = mkdtempSync(join(dir, 'expiry-'));
      const soon = await writePair(sub, 'soon', { dnsNames: ['soon.test'], notAfter: new Date(Date.now() + 5 * DAY_MS) });
      const gone = await writePair(sub, 'gone', {
        dnsNames: ['gone.test'],
        notBefore: new Date(Date.now() - 10 * DAY_MS),
        notAfter: new Date(Date.now() - DAY_MS),
      });
      const fine = await writePair(sub, 'fine', { dnsNames: ['fine.test'] });
      const log = recordingLog();
      await TlsCertificates.open(config([fine, soon, gone]), sub, log);
      const warnings = log.events.filter((e) => e.level === 'warn').map((e) => [e.message, e.details.name, e.details.daysLeft]);
      assert.deepEqual(warnings, [
        ['certificate expires soon', 'soon.test', 4],
        ['certificate has expired', 'gone.test', undefined],
      ]);
    });
  });
});
