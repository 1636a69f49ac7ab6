import assert from 'node:assert/strict';
import { spawn, type ChildProcess } from 'node:child_process';
import { createHash, X509Certificate } from 'node:crypto';
import { connect } from 'node:net';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { openApp } from '../../src/app.js';
import { loadConfig } from '../../src/config/config-loader.js';
import { createLogger } from '../../src/observability/logger.js';
import { generateSelfSignedCertificate } from '../../src/tls/self-signed-certificate.js';
import { DovecotServer } from '../helpers/dovecot-server.js';
import { ImapTranscript } from '../helpers/imap-transcript.js';
import { TestOAuthServer } from '../helpers/oauth-server.js';
import { oauthSection } from '../helpers/oauth-test-app.js';
import { plain, SmtpTranscript } from '../helpers/smtp-transcript.js';
import { makeTestConfig, type TestConfig } from '../helpers/test-config.js';
import { UpstreamSmtpServer } from '../helpers/upstream-smtp-server.js';
import { CLI_ACTOR } from '../../src/core/actor.js';

const GRACE_SECONDS = 20;
const CLI = resolve(import.meta.dirname, '../../src/cli.ts');

interface Serve {
  child: ChildProcess;
  out: () => string;
  ports: { smtp: number; imap: number; ops: number };
  exited: Promise<{ code: number | null; signal: NodeJS.Signals | null; at: number }>;
}

/** `passgate serve` in its own process, as an operator (or systemd, or Kubernetes) runs it. */
async function startServe(tc: TestConfig): Promise<Serve> {
  const child = spawn(process.execPath, ['--import', import.meta.resolve('tsx'), CLI, '--config', tc.file, 'serve'], {
    cwd: tc.dir,
    env: { PATH: process.env.PATH ?? '', HOME: process.env.HOME ?? '/' },
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  let out = '';
  child.stdout!.on('data', (d) => (out += d));
  child.stderr!.on('data', (d) => (out += d));
  const exited = new Promise<{ code: number | null; signal: NodeJS.Signals | null; at: number }>((r) =>
    child.once('exit', (code, signal) => r({ code, signal, at: Date.now() })),
  );
  const line = await waitFor(() => out.split('\n').find((l) => l.includes('"msg":"passgate started"')), 60_000, () => `serve did not start: ${out}`);
  const started = JSON.parse(line) as { version: string; node: string; smtp: Record<string, number>; imap: Record<string, number>; ops: number };
  assert.match(`${started.version} ${started.node}`, /^\d+\.\d+\.\d+\S* v\d+\./, 'the start line names passgate\'s and Node\'s versions');
  return { child, out: () => out, ports: { smtp: started.smtp.submissions!, imap: started.imap.imaps!, ops: started.ops }, exited };
}

async function waitFor<T>(probe: () => T | undefined | false, timeoutMs: number, what: () => string): Promise<T> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const value = probe();
    if (value) return value;
    if (Date.now() > deadline) throw new Error(what());
    await new Promise((r) => setTimeout(r, 25));
  }
}

const readyz = async (port: number) => (await fetch(`http://127.0.0.1:${port}/readyz`)).status;

/** Resolves with the connect error's code (ECONNREFUSED) or 'connected'. */
const tryConnect = (port: number) =>
  new Promise<string>((r) => {
    const socket = connect({ port, host: '127.0.0.1' });
    socket.once('connect', () => (socket.destroy(), r('connected')));
    socket.once('error', (error: NodeJS.ErrnoException) => r(error.code ?? error.message));
  });

async function loggedInSmtp(port: number, user: string, password: string): Promise<SmtpTranscript> {
  const t = await SmtpTranscript.connect(port, { tls: true });
  await t.expect(/^220 /, 15_000);
  t.send('EHLO client.test');
  await t.expect(/^250 /m);
  t.send(`AUTH PLAIN ${plain(user, password)}`);
  await t.expect(/^235 /, 15_000);
  return t;
}

async function certificateFingerprint(port: number): Promise<string> {
  const t = await SmtpTranscript.connect(port, { tls: true });
  const der = t.peerCertificateDer();
  await t.expect(/^220 /, 15_000);
  t.send('QUIT');
  await t.expect(/^221 /);
  t.close();
  return new X509Certificate(der).fingerprint256;
}

describe('passgate serve: signals', () => {
  let oauth: TestOAuthServer;
  let upstream: UpstreamSmtpServer;
  let dovecot: DovecotServer;
  let tc: TestConfig;
  let caDir: string;
  let password: string;
  const user = 'scanner@example.com';

  before(async () => {
    oauth = await new TestOAuthServer().start();
    const pair = await generateSelfSignedCertificate({ commonName: 'upstream.test', dnsNames: ['upstream.test'], ipAddresses: ['127.0.0.1'] });
    upstream = await new UpstreamSmtpServer({ ...pair, introspectionEndpoint: oauth.introspectionEndpoint }).start();
    dovecot = await DovecotServer.start({ introspectionUrl: oauth.introspectionEndpoint, users: [user] });
    caDir = mkdtempSync(join(tmpdir(), 'passgate-lifecycle-'));
    writeFileSync(join(caDir, 'upstream-ca.pem'), pair.cert);
    writeFileSync(join(caDir, 'dovecot-ca.pem'), dovecot.cert);
    const first = await generateSelfSignedCertificate({ commonName: 'first.test', dnsNames: ['first.test'] });
    writeFileSync(join(caDir, 'gw.crt'), first.cert);
    writeFileSync(join(caDir, 'gw.key'), first.key);
    const listener = (name: string) => [{ name, host: '127.0.0.1', port: 0, tls: 'implicit' }];
    tc = makeTestConfig({
      log: { level: 'info' },
      shutdown_grace_seconds: GRACE_SECONDS,
      oauth: oauthSection(oauth),
      ops: { host: '127.0.0.1', port: 0 },
      tls: { certificates: [{ cert_file: join(caDir, 'gw.crt'), key_file: join(caDir, 'gw.key') }], watch: false },
      smtp: {
        hostname: 'passgate.test',
        listeners: listener('submissions'),
        upstream: { host: '127.0.0.1', port: upstream.port, tls: 'starttls', ca_file: join(caDir, 'upstream-ca.pem'), servername: 'upstream.test' },
      },
      imap: {
        listeners: listener('imaps'),
        upstream: { host: '127.0.0.1', port: dovecot.imapsPort, tls: 'implicit', ca_file: join(caDir, 'dovecot-ca.pem'), servername: 'localhost' },
      },
    });
    const app = await openApp(loadConfig({ path: tc.file, env: {}, cwd: tc.dir }).config, { logger: createLogger('silent') });
    try {
      ({ password } = await app.admin.appPasswords.create(CLI_ACTOR, { username: user, name: 'Scanner' }));
    } finally {
      await app.close();
    }
  });

  after(async () => {
    await upstream?.stop();
    await dovecot?.stop();
    await oauth?.stop();
    tc?.cleanup();
    if (caDir) rmSync(caDir, { recursive: true, force: true });
  });

  it('SIGHUP reloads the certificates; SIGTERM drains: the message in flight gets its 250 and is delivered once, idle SMTP gets 421, IMAP gets BYE, new connections are refused, exit 0', async () => {
    const serve = await startServe(tc);
    try {
      // SIGHUP: the renewed certificate is served without a restart (tls.watch is off here).
      const before = await certificateFingerprint(serve.ports.smtp);
      const renewed = await generateSelfSignedCertificate({ commonName: 'renewed.test', dnsNames: ['renewed.test'] });
      writeFileSync(join(caDir, 'gw.crt'), renewed.cert);
      writeFileSync(join(caDir, 'gw.key'), renewed.key);
      serve.child.kill('SIGHUP');
      await waitFor(() => serve.out().includes('"msg":"certificates reloaded"'), 15_000, () => `no reload: ${serve.out()}`);
      const afterHup = await certificateFingerprint(serve.ports.smtp);
      assert.notEqual(afterHup, before);
      assert.equal(afterHup, new X509Certificate(renewed.cert).fingerprint256);

      // A message half sent when SIGTERM arrives.
      const sending = await loggedInSmtp(serve.ports.smtp, user, password);
      sending.send(`MAIL FROM:<${user}>`);
      await sending.expect(/^250 /, 15_000);
      sending.send('RCPT TO:<boss@example.org>');
      await sending.expect(/^250 /, 15_000);
      sending.send('DATA');
      await sending.expect(/^354 /, 15_000);
      const id = `drain-${Date.now()}`;
      const head = `Message-ID: <${id}@lifecycle.test>\r\nSubject: sent across a SIGTERM\r\n\r\n`;
      sending.write(head);
      // An idle logged-in SMTP connection, one with an envelope open, an IMAP client before login, and one
      // spliced to Dovecot.
      const idle = await loggedInSmtp(serve.ports.smtp, user, password);
      const envelope = await loggedInSmtp(serve.ports.smtp, user, password);
      envelope.send(`MAIL FROM:<${user}>`);
      await envelope.expect(/^250 /, 15_000);
      const preLogin = await ImapTranscript.connect(serve.ports.imap, { tls: true });
      await preLogin.until(/^\* OK /, 15_000);
      const spliced = await ImapTranscript.connect(serve.ports.imap, { tls: true });
      await spliced.until(/^\* OK /, 15_000);
      spliced.send(`a LOGIN ${user} ${password}`);
      await spliced.until(/^a OK /, 15_000);
      spliced.send('b SELECT INBOX');
      await spliced.until(/^b OK /, 15_000);
      assert.equal(await readyz(serve.ports.ops), 200);

      const signalled = Date.now();
      serve.child.kill('SIGTERM');
      await waitFor(() => serve.out().includes('"msg":"passgate stopping"'), 15_000, () => `no drain: ${serve.out()}`);

      // At once: the balancer is told, nobody new gets in, idle sessions are told why they are closed.
      assert.equal(await readyz(serve.ports.ops), 503);
      assert.equal(await tryConnect(serve.ports.smtp), 'ECONNREFUSED');
      assert.equal(await tryConnect(serve.ports.imap), 'ECONNREFUSED');
      await idle.expect(/^421 4\.3\.2 /, 10_000);
      await idle.waitClosed();
      const bye = await preLogin.until(/^\* BYE /, 10_000);
      assert.equal(bye.match(/^\* BYE /gm)?.length, 1, 'one BYE');
      await preLogin.waitClosed();
      await spliced.until(/^\* BYE /, 10_000);
      await spliced.waitClosed();

      // A transaction that has begun may go on; once it ends, no new one starts.
      assert.equal(envelope.closed, false, 'a transaction in flight is not cut');
      envelope.send('RSET');
      envelope.send(`MAIL FROM:<${user}>`);
      await envelope.expect(/^250 /, 10_000);
      await envelope.expect(/^421 4\.3\.2 /, 10_000);
      await envelope.waitClosed();

      // The message in flight goes on (a slow client), then gets the upstream's verdict.
      const hash = createHash('sha256').update(head);
      for (let i = 0; i < 10; i++) {
        const line = `line ${i} of a message that keeps coming after SIGTERM\r\n`;
        hash.update(line);
        sending.write(line);
        await new Promise((r) => setTimeout(r, 100));
      }
      sending.write('.\r\n');
      const verdict = await sending.expect(/^250 /, 15_000);
      assert.match(verdict, /queued-\d+@upstream\.test/, 'the upstream\'s own 250');
      await sending.expect(/^421 4\.3\.2 /, 10_000);
      await sending.waitClosed();

      const exit = await serve.exited;
      assert.equal(exit.code, 0, serve.out());
      const tookMs = exit.at - signalled;
      assert.ok(tookMs < GRACE_SECONDS * 1000, `exited ${tookMs} ms after SIGTERM, beyond the ${GRACE_SECONDS} s grace`);
      assert.match(serve.out(), /"msg":"passgate stopped"/);
      console.log(`# SIGTERM → exit 0 in ${tookMs} ms (one slow message finished, grace ${GRACE_SECONDS} s)`);

      const delivered = upstream.deliveries.filter((d) => d.raw?.toString().includes(`<${id}@`));
      assert.equal(delivered.length, 1, 'delivered exactly once');
      assert.equal(delivered[0]!.sha256, hash.digest('hex'), 'byte-identical');
    } finally {
      serve.child.kill('SIGKILL');
    }
  });

  it('a second SIGTERM exits at once, and a message cut short is not delivered', async () => {
    const serve = await startServe(tc);
    try {
      const sending = await loggedInSmtp(serve.ports.smtp, user, password);
      sending.send(`MAIL FROM:<${user}>`);
      await sending.expect(/^250 /, 15_000);
      sending.send('RCPT TO:<boss@example.org>');
      await sending.expect(/^250 /, 15_000);
      sending.send('DATA');
      await sending.expect(/^354 /, 15_000);
      const id = `cut-${Date.now()}`;
      sending.write(`Message-ID: <${id}@lifecycle.test>\r\nSubject: never finished\r\n\r\nhalf a body\r\n`);
      const signalled = Date.now();
      serve.child.kill('SIGTERM');
      await waitFor(() => serve.out().includes('"msg":"passgate stopping"'), 15_000, () => `no drain: ${serve.out()}`);
      serve.child.kill('SIGTERM');
      const exit = await serve.exited;
      assert.equal(exit.code, 1);
      assert.ok(exit.at - signalled < GRACE_SECONDS * 1000, 'did not wait for the grace period');
      assert.match(serve.out(), /second signal/);
      await sending.waitClosed();
      // The upstream saw its DATA end without the final "." (connection closed): nothing to deliver.
      await new Promise((r) => setTimeout(r, 500));
      assert.equal(upstream.deliveries.filter((d) => d.raw?.toString().includes(`<${id}@`)).length, 0);
    } finally {
      serve.child.kill('SIGKILL');
    }
  });
});
