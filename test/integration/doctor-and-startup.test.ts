import assert from 'node:assert/strict';
import { spawn, type ChildProcess } from 'node:child_process';
import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { stringify } from 'yaml';
import { generateSelfSignedCertificate } from '../../src/tls/self-signed-certificate.js';
import { TestOAuthServer } from '../helpers/oauth-server.js';
import { freePort } from '../helpers/redis-server.js';
import { runCli } from '../helpers/run-cli.js';
import { plain, SmtpTranscript } from '../helpers/smtp-transcript.js';
import { FAST_ARGON2 } from '../helpers/test-config.js';
import { UpstreamSmtpServer } from '../helpers/upstream-smtp-server.js';

const CLI = resolve(import.meta.dirname, '../../src/cli.ts');

interface Check {
  name: string;
  status: string;
  detail: string;
  hint?: string;
  failure?: string;
}

/**
 * Issue 18, "doctor and start-up": doctor is as strict as serve about the configuration, its token failures say
 * which URL was asked and what came back, and serve says at start whether its token works.
 */
describe('doctor and start-up', () => {
  let oauth: TestOAuthServer;
  let upstream: UpstreamSmtpServer;
  let dir: string;
  let n = 0;

  before(async () => {
    oauth = await new TestOAuthServer().start();
    // The upstream's certificate names only its address: passgate must check it without sending the address as SNI.
    const pair = await generateSelfSignedCertificate({ commonName: '127.0.0.1', dnsNames: [], ipAddresses: ['127.0.0.1'] });
    upstream = await new UpstreamSmtpServer({ ...pair, introspectionEndpoint: oauth.introspectionEndpoint }).start();
    dir = mkdtempSync(join(tmpdir(), 'passgate-doctor-startup-'));
    writeFileSync(join(dir, 'upstream-ca.pem'), pair.cert);
  });
  after(async () => {
    await Promise.all([upstream?.stop(), oauth?.stop()]);
    if (dir) rmSync(dir, { recursive: true, force: true });
  });

  /** A configuration folder of its own; `oauth` and `smtpUpstream` replace keys of the defaults here. */
  function writeConfig(over: { oauth?: Record<string, unknown>; smtpUpstream?: Record<string, unknown> } = {}): { dir: string; file: string } {
    const own = join(dir, `c${++n}`);
    const file = join(own, 'passgate.yaml');
    const tree = {
      data_dir: join(own, 'data'),
      log: { level: 'info' },
      security: { pepper: 'test-pepper-0123456789abcdef', argon2: FAST_ARGON2 },
      auth: { failure_delay_ms: 50, failure_delay_jitter_ms: 0 },
      ops: { port: 0 },
      imap: { enabled: false },
      oauth: {
        provider: 'generic',
        mode: 'app',
        client_id: oauth.clientId,
        client_secret: oauth.clientSecret,
        token_endpoint: oauth.tokenEndpoint,
        scopes: ['mail'],
        request_timeout_seconds: 2,
        ...over.oauth,
      },
      smtp: {
        listeners: [
          { name: 'submission', host: '127.0.0.1', port: 0, tls: 'starttls' },
          { name: 'submissions', host: '127.0.0.1', port: 0, tls: 'implicit' },
        ],
        upstream: { host: '127.0.0.1', port: upstream.port, tls: 'starttls', ca_file: join(dir, 'upstream-ca.pem'), ...over.smtpUpstream },
      },
    };
    mkdirSync(own, { recursive: true });
    writeFileSync(file, stringify(tree));
    return { dir: own, file };
  }

  const doctor = async (c: { dir: string; file: string }, ...args: string[]) => runCli(['--config', c.file, 'doctor', ...args], { cwd: c.dir });
  const doctorJson = async (c: { dir: string; file: string }) => {
    const result = await doctor(c, '--json');
    const report = JSON.parse(result.stdout) as { exitCode: number; checks: Check[] };
    return { result, report, check: (name: string) => report.checks.find((x) => x.name === name)! };
  };

  it('doctor loads what serve loads: a missing smtp.upstream.ca_file fails both, exit 2, naming the key', async () => {
    const c = writeConfig({ smtpUpstream: { ca_file: join(dir, 'no-such-ca.pem') } });
    const { result, check } = await doctorJson(c);
    assert.equal(result.code, 2, result.stdout);
    assert.equal(check('config').status, 'fail');
    assert.match(check('config').detail, /smtp\.upstream\.ca_file: cannot read \S*no-such-ca\.pem: ENOENT/);
    const serve = await runCli(['--config', c.file, 'serve'], { cwd: c.dir });
    assert.equal(serve.code, 2, serve.stdout + serve.stderr);
    assert.match(serve.stderr, /smtp\.upstream\.ca_file: cannot read \S*no-such-ca\.pem: ENOENT/);
  });

  it('refuses a tenant that is neither a GUID nor a domain at config load, naming the key', async () => {
    const c = writeConfig({ oauth: { provider: 'microsoft', tenant: 'contoso', token_endpoint: null } });
    const { result, check } = await doctorJson(c);
    assert.equal(result.code, 2);
    assert.match(check('config').detail, /oauth\.tenant: must be the tenant id \(a GUID/);
  });

  it('a refused client secret names the URL tried, and Microsoft\'s line breaks print as line breaks', async () => {
    oauth.failNext(1, TestOAuthServer.oauthError(401, 'invalid_client', "AADSTS7000215: Invalid client secret provided.\r\nTrace ID: 0f1e\r\nCorrelation ID: 2d3c\r\nTimestamp: 2026-12-04 09:00:00Z"));
    const out = await doctor(writeConfig());
    assert.equal(out.code, 1);
    assert.match(out.stdout, new RegExp(`FAIL  token +no token from ${oauth.tokenEndpoint.replace(/[.*+?^${}()|[\]\\]/g, '\\$&')}: invalid_client: AADSTS7000215: Invalid client secret provided\\.\\n`));
    assert.doesNotMatch(out.stdout, /\\x0d|\\x0a/, 'no escaped line breaks');
    assert.match(out.stdout, /\n {6}answer:\n {8}invalid_client: AADSTS7000215: Invalid client secret provided\.\n {8}Trace ID: 0f1e\n {8}Correlation ID: 2d3c\n/);
  });

  it('a 503 from the token endpoint is the provider failing, not a firewall, and the hint shows its answer', async () => {
    oauth.failNext(1, { status: 503, body: '<html><body><h1>Service Unavailable</h1> the login service is overloaded</body></html>' });
    const { check } = await doctorJson(writeConfig());
    const token = check('token');
    assert.equal(token.failure, 'token-provider-failing');
    assert.doesNotMatch(token.hint!, /firewall/);
    assert.match(token.hint!, /answer:\n {2}http_503: .*\n {2}HTTP 503: Service Unavailable the login service is overloaded/);
  });

  it('an unreachable token endpoint: the hint names the configured host and port, not Microsoft\'s', async () => {
    const closed = await freePort();
    const { check } = await doctorJson(writeConfig({ oauth: { provider: 'microsoft', tenant: 'contoso.onmicrosoft.com', token_endpoint: null, authority_host: `http://127.0.0.1:${closed}` } }));
    const token = check('token');
    assert.equal(token.failure, 'token-unreachable');
    assert.match(token.detail, new RegExp(`no token from http://127\\.0\\.0\\.1:${closed}/contoso\\.onmicrosoft\\.com/oauth2/v2\\.0/token: `));
    assert.match(token.hint!, new RegExp(`reaches 127\\.0\\.0\\.1:${closed} over HTTPS`));
    assert.doesNotMatch(token.hint!, /login\.microsoftonline\.com/);
  });

  describe('serve', () => {
    const children: ChildProcess[] = [];
    after(() => children.forEach((c) => c.kill('SIGKILL')));

    async function serve(c: { dir: string; file: string }) {
      const child = spawn(process.execPath, ['--import', import.meta.resolve('tsx'), CLI, '--config', c.file, 'serve'], {
        cwd: c.dir,
        env: { PATH: process.env.PATH ?? '', HOME: process.env.HOME ?? '/' },
        stdio: ['ignore', 'pipe', 'pipe'],
      });
      children.push(child);
      let out = '';
      child.stdout!.on('data', (d) => (out += d));
      child.stderr!.on('data', (d) => (out += d));
      const lines = () => out.split('\n').filter((l) => l.startsWith('{')).map((l) => JSON.parse(l) as Record<string, unknown>);
      const waitForLine = async (msg: string) => {
        for (;;) {
          const line = lines().find((l) => l.msg === msg);
          if (line) return line;
          if (child.exitCode !== null) throw new Error(`serve exited: ${out}`);
          await new Promise((r) => child.stdout!.once('data', r));
        }
      };
      const started = await waitForLine('passgate started');
      return { child, out: () => out, lines, waitForLine, ports: started.smtp as Record<string, number>, ops: started.ops as number };
    }

    it('checks the token at start: a wrong client secret is a warning naming the URL, a failing token in /readyz and the metric; it still serves', async () => {
      const c = writeConfig({ oauth: { client_secret: 'not-the-secret' } });
      oauth.failNext(1, TestOAuthServer.oauthError(401, 'invalid_client', 'AADSTS7000215: Invalid client secret provided.\r\nTrace ID: 0f1e\r\nCorrelation ID: 2d3c'));
      const s = await serve(c);
      const warning = await s.waitForLine('upstream token unavailable at start');
      assert.equal(warning.level, 'warn');
      assert.equal(warning.tokenEndpoint, oauth.tokenEndpoint);
      assert.match(String(warning.cause), /invalid_client: AADSTS7000215/);
      const readyz = await fetch(`http://127.0.0.1:${s.ops}/readyz`);
      assert.equal(readyz.status, 200, 'a token problem never makes the instance unready');
      const body = (await readyz.json()) as { tokens: { key: string; state: string; lastError: string }[] };
      assert.equal(body.tokens[0]?.state, 'failing');
      assert.match(body.tokens[0]!.lastError, /AADSTS7000215/);
      const metrics = await (await fetch(`http://127.0.0.1:${s.ops}/metrics`)).text();
      assert.match(metrics, /^passgate_oauth_tokens\{state="failing"\} 1$/m);
      assert.match(metrics, /^passgate_token_requests_total\{result="config"\} 1$/m);
      // passgate oauth status shows the same answer, its line breaks printed as such.
      const status = await runCli(['--config', c.file, 'oauth', 'status'], { cwd: c.dir });
      assert.equal(status.code, 1);
      assert.match(status.stdout, /^app +app +failing .*AADSTS7000215: Invalid client secret provided\.$/m);
      assert.match(status.stdout, /\napp: .*AADSTS7000215: Invalid client secret provided\.\n {2}Trace ID: 0f1e\n {2}Correlation ID: 2d3c\n/);
      assert.doesNotMatch(status.stdout, /\\x0d/);
      s.child.kill('SIGTERM');
    });

    it('with a working token: says so at start; an upstream named by address gets no SNI and no deprecation warning; a failed STARTTLS is tls-failed', async () => {
      const c = writeConfig();
      const created = await runCli(['--config', c.file, 'app-password', 'create', '--user', 'scanner@example.com', '--name', 'Scanner', '--json'], { cwd: c.dir });
      const { password } = JSON.parse(created.stdout) as { password: string };
      const s = await serve(c);
      await s.waitForLine('upstream token obtained at start');
      const readyz = (await (await fetch(`http://127.0.0.1:${s.ops}/readyz`)).json()) as { tokens: { state: string }[] };
      assert.equal(readyz.tokens[0]?.state, 'ok');

      // AUTH proves the mailbox upstream at once: a TLS connection to 127.0.0.1, checked against its IP address.
      const t = await SmtpTranscript.connect(s.ports.submissions!, { tls: true });
      await t.expect(/^220 /);
      t.send('EHLO client.test');
      await t.expect(/^250 /m);
      t.send(`AUTH PLAIN ${plain('scanner@example.com', password)}`);
      await t.expect(/^235 /);
      t.send('QUIT');
      await t.expect(/^221 /);

      // STARTTLS, then bytes that are no TLS ClientHello: the handshake fails.
      const bad = await SmtpTranscript.connect(s.ports.submission!);
      await bad.expect(/^220 /);
      bad.send('EHLO client.test');
      await bad.expect(/^250 /m);
      bad.send('STARTTLS');
      await bad.expect(/^220 /);
      bad.send('this is not a TLS handshake');
      const closed = async () => {
        for (;;) {
          const line = s.lines().find((l) => l.msg === 'session closed' && l.listener === 'submission');
          if (line) return line;
          await new Promise((r) => s.child.stdout!.once('data', r));
        }
      };
      assert.equal((await closed()).reason, 'tls-failed');
      assert.doesNotMatch(s.out(), /DEP0123|DeprecationWarning|TLS ServerName/);
      s.child.kill('SIGTERM');
    });
  });
});
