import assert from 'node:assert/strict';
import { chmodSync, existsSync, mkdirSync, mkdtempSync, readFileSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import Database from 'better-sqlite3';
import { Redis } from 'ioredis';
import { parse, stringify } from 'yaml';
import { openSqliteDatabase, SQLITE_SCHEMA_VERSION } from '../../src/credentials/sqlite-database.js';
import { generateSelfSignedCertificate } from '../../src/tls/self-signed-certificate.js';
import { DovecotServer } from '../helpers/dovecot-server.js';
import { TestOAuthServer } from '../helpers/oauth-server.js';
import { oauthSection } from '../helpers/oauth-test-app.js';
import { freePort, startRedis, type TestRedis } from '../helpers/redis-server.js';
import { runCli, type CliResult } from '../helpers/run-cli.js';
import { makeTestConfig, type TestConfig } from '../helpers/test-config.js';
import { UpstreamSmtpServer } from '../helpers/upstream-smtp-server.js';

interface Check {
  name: string;
  status: 'pass' | 'warn' | 'fail' | 'skip';
  detail: string;
  hint?: string;
  failure?: string;
}
interface Report {
  ok: boolean;
  exitCode: number;
  checks: Check[];
}

const MAILBOX = 'reader@example.com';
const DAY = 86_400_000;

describe('passgate doctor (CLI, against the local OAuth server, SMTP upstream, Dovecot and Redis)', () => {
  let oauth: TestOAuthServer;
  /** An OAuth server that never issued passgate's tokens: a Dovecot asking it refuses every login. */
  let foreign: TestOAuthServer;
  let upstream: UpstreamSmtpServer;
  let dovecot: DovecotServer;
  let refusingDovecot: DovecotServer;
  let dir: string;
  const configs: TestConfig[] = [];
  const files = (name: string) => join(dir, name);

  before(async () => {
    oauth = await new TestOAuthServer().start();
    foreign = await new TestOAuthServer().start();
    const upstreamPair = await generateSelfSignedCertificate({ commonName: 'upstream.test', dnsNames: ['upstream.test'], ipAddresses: ['127.0.0.1'] });
    upstream = await new UpstreamSmtpServer({ ...upstreamPair, introspectionEndpoint: oauth.introspectionEndpoint }).start();
    [dovecot, refusingDovecot] = await Promise.all([
      DovecotServer.start({ introspectionUrl: oauth.introspectionEndpoint, users: [MAILBOX] }),
      DovecotServer.start({ introspectionUrl: foreign.introspectionEndpoint, users: [MAILBOX] }),
    ]);
    dir = mkdtempSync(join(tmpdir(), 'passgate-doctor-'));
    writeFileSync(files('smtp-ca.pem'), upstreamPair.cert);
    writeFileSync(files('imap-ca.pem'), dovecot.cert);
    writeFileSync(files('imap-refusing-ca.pem'), refusingDovecot.cert);
    const now = Date.now();
    const pairs = {
      valid: { notBefore: new Date(now - DAY), notAfter: new Date(now + 365 * DAY) },
      expired: { notBefore: new Date(now - 30 * DAY), notAfter: new Date(now - DAY) },
      soon: { notBefore: new Date(now - DAY), notAfter: new Date(now + 5 * DAY) },
    };
    for (const [name, validity] of Object.entries(pairs)) {
      const pair = await generateSelfSignedCertificate({ commonName: 'mail.example.com', dnsNames: ['mail.example.com'], ...validity });
      writeFileSync(files(`${name}.crt`), pair.cert);
      writeFileSync(files(`${name}.key`), pair.key);
    }
  });

  after(async () => {
    for (const tc of configs) tc.cleanup();
    await Promise.all([upstream?.stop(), dovecot?.stop(), refusingDovecot?.stop(), oauth?.stop(), foreign?.stop()]);
    if (dir) rmSync(dir, { recursive: true, force: true });
  });

  /** A configuration that passes every check; `over` replaces whole sections or upstream blocks. */
  function config(over: { oauth?: Record<string, unknown>; tls?: string; smtpUpstream?: Record<string, unknown>; imapUpstream?: Record<string, unknown>; pop3Upstream?: Record<string, unknown>; redis?: Record<string, unknown>; store?: boolean } = {}): TestConfig {
    const tc = makeTestConfig({
      oauth: oauthSection(oauth, over.oauth),
      tls: { certificates: [{ cert_file: files(`${over.tls ?? 'valid'}.crt`), key_file: files(`${over.tls ?? 'valid'}.key`) }] },
      smtp: {
        upstream: { host: '127.0.0.1', port: upstream.port, tls: 'starttls', ca_file: files('smtp-ca.pem'), servername: 'upstream.test', connect_timeout_seconds: 10, ...over.smtpUpstream },
      },
      imap: {
        upstream: { host: '127.0.0.1', port: dovecot.imapsPort, tls: 'implicit', ca_file: files('imap-ca.pem'), servername: 'localhost', connect_timeout_seconds: 10, ...over.imapUpstream },
      },
      pop3: {
        enabled: true,
        upstream: { host: '127.0.0.1', port: dovecot.pop3sPort, tls: 'implicit', ca_file: files('imap-ca.pem'), servername: 'localhost', connect_timeout_seconds: 10, ...over.pop3Upstream },
      },
      ...(over.redis ? { redis: over.redis } : {}),
    });
    configs.push(tc);
    // The embedded store as serve leaves it (doctor never creates it); store: false for a fresh install.
    if (!over.redis && over.store !== false) openSqliteDatabase(tc.config.sqlite.path).close();
    return tc;
  }

  const doctor = (tc: TestConfig, ...args: string[]) => runCli(['--config', tc.file, 'doctor', ...args], { cwd: tc.dir });

  async function doctorJson(tc: TestConfig, ...args: string[]): Promise<{ result: CliResult; report: Report; check: (name: string) => Check }> {
    const result = await doctor(tc, '--json', ...args);
    const report = JSON.parse(result.stdout) as Report;
    assert.equal(report.exitCode, result.code);
    const check = (name: string) => {
      const found = report.checks.find((c) => c.name === name);
      assert.ok(found, `no check ${name} in ${result.stdout}`);
      return found;
    };
    return { result, report, check };
  }

  /** Nothing the doctor prints may hold an access token or the client secret. */
  function assertNoSecrets(result: CliResult): void {
    const text = result.stdout + result.stderr;
    assert.ok(!text.includes(oauth.clientSecret), 'the client secret was printed');
    for (const token of oauth.issuedAccessTokens()) assert.ok(!text.includes(token), 'an access token was printed');
  }

  it('passes every check, logging in upstream over SMTP, IMAP and POP3 for real (exit 0, even with --strict)', async () => {
    const tc = config();
    const loginsBefore = upstream.logins;
    const human = await doctor(tc, '--mailbox', MAILBOX, '--strict');
    assert.equal(human.code, 0, human.stdout + human.stderr);
    const lines = human.stdout.trim().split('\n');
    for (const name of ['config', 'tls', 'store', 'pepper', 'token', 'smtp continuous errors', 'smtp login', 'imap login', 'pop3 login']) {
      assert.match(human.stdout, new RegExp(`^PASS {2}${name} +\\S`, 'm'), `${name} passes:\n${human.stdout}`);
    }
    // The portal is off in this configuration: its check says so (doctor-portal.test.ts runs it for real).
    assert.match(human.stdout, /^SKIP {2}portal sign-in +portal\.enabled is false$/m);
    assert.match(lines.at(-1)!, /^9 passed, 0 warnings, 0 failed, 1 skipped: ready \(exit 0\)$/);
    assert.match(human.stdout, /pop3 login +127\.0\.0\.1:\d+ accepted AUTH XOAUTH2 as reader@example\.com and answered STAT \(TLS\)/);
    assert.match(human.stdout, /smtp login +127\.0\.0\.1:\d+ accepted AUTH XOAUTH2 as reader@example\.com \(STARTTLS\)/);
    assert.match(human.stdout, /imap login +127\.0\.0\.1:\d+ accepted AUTHENTICATE XOAUTH2 as reader@example\.com and opened INBOX \(TLS\)/);
    assert.match(human.stdout, /tls +mail\.example\.com .* valid until \d{4}-\d\d-\d\d \(36\d days\)/);
    assert.equal(upstream.logins, loginsBefore + 1, 'one real XOAUTH2 login at the SMTP upstream');
    assert.equal(upstream.deliveries.length, 0, 'nothing was sent');
    assertNoSecrets(human);
  });

  it('names the key of an invalid configuration and exits 2', async () => {
    const tc = config();
    writeFileSync(tc.file, 'smtp:\n  upstream:\n    hots: smtp.office365.com\n');
    const human = await doctor(tc);
    assert.equal(human.code, 2);
    assert.match(human.stdout, /^FAIL {2}config +invalid configuration in .*passgate\.yaml: smtp\.upstream\.hots: unknown key$/m);
    assert.match(human.stdout, /^SKIP {2}store /m);
    const { report } = await doctorJson(tc);
    assert.equal(report.ok, false);
    assert.equal(report.exitCode, 2);
  });

  it('fails on an expired certificate and warns about one that expires within 14 days (--strict fails on it)', async () => {
    const expired = await doctorJson(config({ tls: 'expired' }));
    assert.equal(expired.result.code, 1);
    assert.equal(expired.check('tls').status, 'fail');
    assert.match(expired.check('tls').detail, /mail\.example\.com .* expired on \d{4}-\d\d-\d\d/);

    const soonConfig = config({ tls: 'soon' });
    const soon = await doctorJson(soonConfig);
    assert.equal(soon.result.code, 0, 'a warning alone passes');
    assert.equal(soon.check('tls').status, 'warn');
    assert.match(soon.check('tls').detail, /expires in [45] days/);
    const strict = await doctor(soonConfig, '--strict');
    assert.equal(strict.code, 1);
    assert.match(strict.stdout, /^WARN {2}tls +mail\.example\.com .* expires in [45] days/m);
    assert.match(strict.stdout, /not ready \(exit 1\)$/m);
  });

  it('warns when the store file is readable by other users, and leaves its mode alone', async () => {
    const tc = config();
    chmodSync(tc.config.sqlite.path, 0o644);
    const { result, check } = await doctorJson(tc);
    assert.equal(result.code, 0);
    assert.equal(check('store').status, 'warn');
    assert.match(check('store').detail, /is readable by other users \(mode 644\)$/);
    assert.match(check('store').hint!, /chmod 600 /);
    assert.equal(statSync(tc.config.sqlite.path).mode & 0o777, 0o644, 'doctor changes nothing');
  });

  describe('the embedded store, read-only', () => {
    it('leaves the file byte for byte as it was (and its modification time)', async () => {
      const tc = config();
      const path = tc.config.sqlite.path;
      const bytes = readFileSync(path);
      const mtime = statSync(path).mtimeMs;
      const { result, check } = await doctorJson(tc, '--strict');
      assert.equal(result.code, 0, result.stdout);
      assert.equal(check('store').status, 'pass');
      assert.match(check('store').detail, new RegExp(`schema version ${SQLITE_SCHEMA_VERSION} is current, 0 active app passwords$`));
      assert.ok(readFileSync(path).equals(bytes), 'the store file changed');
      assert.equal(statSync(path).mtimeMs, mtime);
    });

    it('reports an older schema and does not upgrade it; the token check still runs', async () => {
      const tc = config();
      const path = tc.config.sqlite.path;
      // Schema 2: the store as the passgate before app-password policies left it (later migrations: policy, meta, disabled_at + web_sessions).
      const old = new Database(path);
      old.exec('ALTER TABLE app_passwords DROP COLUMN policy; ALTER TABLE app_passwords DROP COLUMN disabled_at; DROP TABLE web_sessions; DROP TABLE IF EXISTS meta');
      old.pragma('user_version = 2');
      old.close();
      const bytes = readFileSync(path);
      const { result, check } = await doctorJson(tc);
      assert.equal(result.code, 0, result.stdout);
      assert.equal(check('store').status, 'warn');
      assert.equal(check('store').detail, `${path}: schema version 2, this passgate expects ${SQLITE_SCHEMA_VERSION}; serve will upgrade it`);
      assert.equal(check('token').status, 'pass');
      assert.ok(readFileSync(path).equals(bytes), 'the store file changed');
      const reread = new Database(path, { readonly: true });
      assert.equal(reread.pragma('user_version', { simple: true }), 2);
      reread.close();
    });

    it('reports a missing file as a warning, and does not create it', async () => {
      const tc = config({ store: false });
      const path = tc.config.sqlite.path;
      const { result, check } = await doctorJson(tc);
      assert.equal(result.code, 0, result.stdout);
      assert.equal(check('store').status, 'warn');
      assert.equal(check('store').detail, `no store yet at ${path}; \`passgate serve\` creates it`);
      assert.equal(check('token').status, 'pass', 'app mode needs no store');
      assert.equal(existsSync(path), false);
      assert.equal((await doctor(tc, '--strict')).code, 1, 'a warning: --strict fails on it');
    });

    it('checks a fresh install without writing to it: no store, no pepper, no data_dir created', async () => {
      const tc = config({ store: false });
      const tree = parse(readFileSync(tc.file, 'utf8')) as { security: Record<string, unknown>; data_dir?: string };
      delete tree.security.pepper;
      tree.data_dir = 'fresh-state';
      writeFileSync(tc.file, stringify(tree), { mode: 0o600 });
      const dataDir = join(tc.dir, 'fresh-state');
      const { result, check } = await doctorJson(tc);
      assert.equal(result.code, 0, result.stdout);
      assert.equal(check('config').status, 'warn');
      assert.match(check('config').hint ?? check('config').detail, /no pepper at .*fresh-state\/pepper yet: passgate serve creates it/);
      assert.equal(check('store').status, 'warn');
      assert.equal(existsSync(dataDir), false, 'doctor created data_dir');
    });

    it('fails on a file that is not a passgate store', async () => {
      const tc = config({ store: false });
      mkdirSync(dirname(tc.config.sqlite.path), { recursive: true });
      writeFileSync(tc.config.sqlite.path, 'not a database at all, just text that is long enough to have a header of sorts');
      const { result, check } = await doctorJson(tc);
      assert.equal(result.code, 1);
      assert.equal(check('store').status, 'fail');
      assert.match(check('store').detail, /not a database/);
    });
  });

  it('with Microsoft, shows what an app token may do and warns when a permission is missing', async () => {
    const tc = config({ oauth: { provider: 'microsoft', tenant: 'contoso.onmicrosoft.com', scopes: null } });
    oauth.jwtClaims = { aud: 'https://outlook.office365.com', roles: ['SMTP.SendAsApp'] };
    try {
      const result = await doctor(tc);
      assert.equal(result.code, 0, result.stdout);
      assert.match(result.stdout, /^WARN {2}token +valid for \d+ min, audience https:\/\/outlook\.office365\.com, roles: SMTP\.SendAsApp; missing IMAP\.AccessAsApp, POP\.AccessAsApp$/m);
      assert.match(result.stdout, /^ {6}Add the Office 365 Exchange Online application permission IMAP\.AccessAsApp, POP\.AccessAsApp .*admin consent/m);
      assertNoSecrets(result);
      oauth.jwtClaims = { aud: 'https://outlook.office365.com', roles: ['SMTP.SendAsApp', 'IMAP.AccessAsApp', 'POP.AccessAsApp'] };
      const granted = await doctor(tc, '--mailbox', MAILBOX, '--strict');
      assert.equal(granted.code, 0, granted.stdout);
      assert.match(granted.stdout, /^PASS {2}token +valid for \d+ min, audience https:\/\/outlook\.office365\.com, roles: SMTP\.SendAsApp IMAP\.AccessAsApp POP\.AccessAsApp$/m);
      assertNoSecrets(granted);
    } finally {
      oauth.jwtClaims = null;
    }
  });

  describe('Redis', () => {
    let redis: TestRedis;
    let admin: Redis;
    before(async () => {
      redis = await startRedis({ own: true }); // its configuration is changed below: never a shared one
      admin = new Redis(redis.url);
    });
    after(async () => {
      admin?.disconnect();
      await redis?.close();
    });
    const redisConfig = (over: Record<string, unknown> = {}) => config({ redis: { url: redis.url, key_prefix: redis.prefix, ...over } });

    it('fails when Redis may evict keys, and warns without persistence', async () => {
      await admin.config('SET', 'maxmemory-policy', 'allkeys-lru');
      const { result, check } = await doctorJson(redisConfig());
      assert.equal(result.code, 1);
      assert.equal(check('redis').status, 'pass');
      assert.equal(check('redis eviction').status, 'fail');
      assert.match(check('redis eviction').detail, /maxmemory-policy is allkeys-lru/);
      assert.match(check('redis eviction').hint!, /noeviction/);
      assert.equal(check('redis persistence').status, 'warn');
    });

    it('passes with noeviction and RDB snapshots', async () => {
      await admin.config('SET', 'maxmemory-policy', 'noeviction');
      // A schedule only: within the test nothing is written (an hour, and the harness ends Redis with SIGKILL).
      await admin.config('SET', 'save', '3600 1');
      const result = await doctor(redisConfig(), '--strict').finally(() => admin.config('SET', 'save', ''));
      assert.equal(result.code, 0, result.stdout);
      assert.match(result.stdout, /^PASS {2}redis eviction +maxmemory-policy is noeviction$/m);
      assert.match(result.stdout, /^PASS {2}redis persistence +RDB snapshots are scheduled/m);
    });

    it('delegated --mailbox on Redis: a provider failure is reported, never stored; a successful grant is', async () => {
      const delegated = config({ oauth: { mode: 'delegated' }, redis: { url: redis.url, key_prefix: `${redis.prefix}delegated:` } });
      await admin.config('SET', 'maxmemory-policy', 'noeviction');
      const mailbox = 'shared-state@example.com';
      const cli = (args: string[], input?: string) => runCli(['--config', delegated.file, ...args], { cwd: delegated.dir, ...(input === undefined ? {} : { input }) });
      const state = async () => (JSON.parse((await cli(['oauth', 'status', '--json'])).stdout) as { mailbox: string; state: string; failures?: number }[]).find((s) => s.mailbox === mailbox);
      // An access token that is due for refresh at once (1 s lifetime, inside any margin): doctor must redeem.
      oauth.tokenLifetime = 1;
      try {
        const imported = await cli(['oauth', 'import', '--mailbox', mailbox], oauth.mintRefreshToken(mailbox));
        assert.equal(imported.code, 0, imported.stderr);
      } finally {
        oauth.tokenLifetime = 3600;
      }
      const before = await state();
      assert.equal(before?.state, 'ok');

      oauth.failNext(1, TestOAuthServer.oauthError(503, 'temporarily_unavailable', 'try later'));
      const temporary = await doctorJson(delegated, '--mailbox', mailbox);
      assert.equal(temporary.check(`token ${mailbox}`).status, 'fail');
      assert.equal((await state())?.state, 'ok', 'no failing state or backoff stored for the serving instances');

      oauth.failNext(1, TestOAuthServer.oauthError(400, 'invalid_grant', 'AADSTS70000: a client id that is not the one the grant was made for'));
      const refused = await doctorJson(delegated, '--mailbox', mailbox);
      assert.equal(refused.check(`token ${mailbox}`).status, 'fail');
      assert.equal((await state())?.state, 'ok', 'the grant was not dropped: no needs-connect stored');

      const refreshes = oauth.counts.refresh_token;
      const granted = await doctorJson(delegated, '--mailbox', mailbox);
      assert.equal(granted.check(`token ${mailbox}`).status, 'pass', granted.result.stdout);
      assert.equal(oauth.counts.refresh_token, refreshes + 1, 'the refresh token was redeemed');
      const again = await doctorJson(delegated, '--mailbox', mailbox);
      assert.equal(again.check(`token ${mailbox}`).status, 'pass');
      assert.equal(oauth.counts.refresh_token, refreshes + 1, 'the rotated grant and its access token were stored and used');
    });

    it('reads the policy from INFO when CONFIG is refused (as on managed Redis), and says so', async () => {
      await admin.call('ACL', 'SETUSER', 'doctor', 'on', '>doctor-password-1', '~*', '&*', '+@all', '-config');
      const url = new URL(redis.url);
      url.username = 'doctor';
      url.password = 'doctor-password-1';
      const { result, check } = await doctorJson(redisConfig({ url: url.href }));
      assert.equal(result.code, 0, result.stdout);
      assert.equal(check('redis eviction').status, 'pass');
      assert.equal(check('redis config').status, 'warn');
      assert.match(check('redis config').detail, /CONFIG GET refused \(NOPERM/);
      assert.ok(!result.stdout.includes('doctor-password-1'), 'the Redis password was printed');

      await admin.call('ACL', 'SETUSER', 'blind', 'on', '>blind-password-1', '~*', '&*', '+@all', '-config', '-info');
      url.username = 'blind';
      url.password = 'blind-password-1';
      const blind = await doctorJson(redisConfig({ url: url.href }));
      assert.equal(blind.result.code, 0, blind.result.stdout);
      assert.equal(blind.check('redis eviction').status, 'warn');
      assert.match(blind.check('redis eviction').detail, /CONFIG GET and INFO both refused/);
    });
  });

  it('explains a token endpoint refusal in plain words (AADSTS7000215 bad secret, AADSTS53003 Conditional Access)', async () => {
    const badSecret = await doctor(config({ oauth: { client_secret: 'not-the-secret' } }), '--mailbox', MAILBOX);
    assert.equal(badSecret.code, 1);
    assert.match(badSecret.stdout, /^FAIL {2}token +no token from http:\/\/127\.0\.0\.1:\d+\/token: invalid_client: AADSTS7000215: Invalid client secret provided\./m);
    assert.match(badSecret.stdout, /^ {6}Entra ID refused the client secret/m);
    assert.match(badSecret.stdout, /^ {6}fix: .*Certificates & secrets/m);
    assert.match(badSecret.stdout, /^SKIP {2}smtp login +no token for reader@example\.com$/m);
    assert.match(badSecret.stdout, /^SKIP {2}imap login /m);
    assert.ok(!badSecret.stdout.includes('not-the-secret'));

    oauth.failNext(1, TestOAuthServer.oauthError(400, 'invalid_grant', 'AADSTS53003: Access has been blocked by Conditional Access policies. The access policy does not allow token issuance.'));
    const blocked = await doctorJson(config());
    assert.equal(blocked.result.code, 1);
    assert.equal(blocked.check('token').failure, 'aadsts-conditional-access');
    assert.match(blocked.check('token').hint!, /Conditional Access policy blocked the sign-in/);
  });

  it('explains an SMTP refusal: 535 5.7.139 (SMTP AUTH disabled) and 535 5.7.3 (token refused), while IMAP still passes', async () => {
    const tc = config();
    upstream.refuseLogins = { code: 535, text: '5.7.139 Authentication unsuccessful, SmtpClientAuthentication is disabled for the Tenant. Visit https://aka.ms/smtp_auth_disabled for more information.' };
    try {
      const human = await doctor(tc, '--mailbox', MAILBOX);
      assert.equal(human.code, 1);
      assert.match(human.stdout, /^FAIL {2}smtp login +127\.0\.0\.1:\d+ refused the login as reader@example\.com: 535 5\.7\.139 Authentication unsuccessful, SmtpClientAuthentication is disabled for the Tenant\./m);
      assert.match(human.stdout, /SMTP AUTH is turned off for the whole organization/);
      assert.match(human.stdout, /Set-TransportConfig -SmtpClientAuthenticationDisabled \$false/);
      assert.match(human.stdout, /Set-CASMailbox -Identity reader@example\.com -SmtpClientAuthenticationDisabled \$false/, 'the command names the mailbox');
      assert.match(human.stdout, /^PASS {2}imap login /m);

      upstream.refuseLogins = { code: 535, text: '5.7.3 Authentication unsuccessful' };
      const { check } = await doctorJson(tc, '--mailbox', MAILBOX);
      assert.equal(check('smtp login').failure, 'smtp-token-refused');
      assert.match(check('smtp login').hint!, /New-ServicePrincipal -AppId passgate-test-client /);
      assert.match(check('smtp login').hint!, /Add-MailboxPermission/);
    } finally {
      upstream.refuseLogins = null;
    }
  });

  it('explains an IMAP login refusal (a token the IMAP server does not accept), while SMTP still passes', async () => {
    const tc = config({ imapUpstream: { port: refusingDovecot.imapsPort, ca_file: files('imap-refusing-ca.pem') } });
    const { result, check } = await doctorJson(tc, '--mailbox', MAILBOX);
    assert.equal(result.code, 1);
    assert.equal(check('smtp login').status, 'pass');
    const imap = check('imap login');
    assert.equal(imap.status, 'fail');
    assert.match(imap.detail, /refused the login as reader@example\.com: NO \[AUTHENTICATIONFAILED\]/);
    assert.equal(imap.failure, 'imap-authenticate-failed');
    assert.match(imap.hint!, /IMAP\.AccessAsApp/);
    assert.match(imap.hint!, /Set-CASMailbox -Identity reader@example\.com -ImapEnabled \$true/);
  });

  it('explains a POP3 login refusal: POP turned off for the mailbox, or the app without POP permission', async () => {
    const tc = config({ pop3Upstream: { port: refusingDovecot.pop3sPort, ca_file: files('imap-refusing-ca.pem') } });
    const { result, check } = await doctorJson(tc, '--mailbox', MAILBOX);
    assert.equal(result.code, 1);
    assert.equal(check('imap login').status, 'pass');
    const pop3 = check('pop3 login');
    assert.equal(pop3.status, 'fail');
    assert.match(pop3.detail, /refused the login as reader@example\.com: -ERR \[AUTH\]/);
    assert.equal(pop3.failure, 'pop3-authentication-failure');
    assert.match(pop3.hint!, /Set-CASMailbox -Identity reader@example\.com -PopEnabled \$true/);
    assert.match(pop3.hint!, /POP\.AccessAsApp/);
  });

  it('explains an unreachable upstream and an untrusted upstream certificate', async () => {
    const closed = await freePort();
    const { result, check } = await doctorJson(config({ smtpUpstream: { port: closed }, imapUpstream: { ca_file: null } }), '--mailbox', MAILBOX);
    assert.equal(result.code, 1);
    assert.equal(check('smtp login').failure, 'connect-refused');
    assert.match(check('smtp login').detail, /ECONNREFUSED/);
    assert.match(check('smtp login').hint!, /Nothing accepts connections/);
    assert.equal(check('imap login').failure, 'tls-untrusted');
    assert.match(check('imap login').hint!, /set ca_file/);
  });

  it('delegated mode: reports the connected mailboxes read-only, then logs in as --mailbox with its stored access token', async () => {
    const tc = config({ oauth: { mode: 'delegated' } });
    const none = await doctorJson(tc);
    assert.equal(none.result.code, 0, none.result.stdout);
    assert.equal(none.check('token').status, 'warn');
    assert.match(none.check('token').detail, /no mailbox connected yet/);

    const importToken = (mailbox: string, token: string) => runCli(['--config', tc.file, 'oauth', 'import', '--mailbox', mailbox], { cwd: tc.dir, input: token });
    const imported = await importToken(MAILBOX, oauth.mintRefreshToken(MAILBOX));
    assert.equal(imported.code, 0, imported.stderr);
    assert.equal((await importToken('gone@example.com', 'rt-not-a-real-token')).code, 1, 'a refresh token the provider does not honour');

    // Without --mailbox: the stored state of each connected mailbox, without asking the provider.
    const refreshes = oauth.counts.refresh_token;
    const listed = await doctorJson(tc);
    assert.equal(oauth.counts.refresh_token, refreshes, 'no refresh token was redeemed');
    assert.equal(listed.result.code, 1);
    assert.equal(listed.check(`token ${MAILBOX}`).status, 'pass');
    assert.match(listed.check(`token ${MAILBOX}`).detail, /^connected; last token \d{4}-\d\d-\d\d \d\d:\d\dZ/);
    assert.equal(listed.check('token gone@example.com').status, 'fail');
    assert.equal(listed.check('token gone@example.com').failure, 'aadsts-grant-lost');
    assert.match(listed.check('token gone@example.com').detail, /needs-connect since .*AADSTS70043/);

    const connected = await doctor(tc, '--mailbox', MAILBOX, '--strict');
    assert.equal(connected.code, 0, connected.stdout);
    assert.match(connected.stdout, /^PASS {2}token reader@example\.com +valid for \d+ min/m);
    assert.match(connected.stdout, /^PASS {2}smtp login /m);
    assert.match(connected.stdout, /^PASS {2}imap login /m);
    for (const rt of oauth.currentRefreshTokens()) assert.ok(!connected.stdout.includes(rt), 'a refresh token was printed');
    assert.equal(oauth.counts.refresh_token, refreshes, 'the stored access token was used, no refresh token redeemed');

    // An access token due for refresh: on the (read-only) embedded store doctor does not redeem the refresh token,
    // whose rotated successor it could not store; it says so and skips the logins.
    const db = new Database(tc.config.sqlite.path);
    db.prepare("UPDATE oauth_tokens SET state = json_set(state, '$.accessExpiresAt', ?) WHERE key = ?").run(Date.now() - 60_000, `mailbox:${MAILBOX}`);
    db.close();
    const stale = await doctorJson(tc, '--mailbox', MAILBOX);
    assert.equal(oauth.counts.refresh_token, refreshes, 'no refresh token was redeemed');
    assert.equal(stale.result.code, 0, stale.result.stdout);
    assert.equal(stale.check(`token ${MAILBOX}`).status, 'warn');
    assert.match(stale.check(`token ${MAILBOX}`).detail, /stored access token is due for refresh .*does not redeem the refresh token/);
    assert.equal(stale.check('smtp login').status, 'skip');

    const other = await doctorJson(tc, '--mailbox', 'nobody@example.com');
    assert.equal(other.result.code, 1);
    assert.equal(other.check('token nobody@example.com').failure, 'aadsts-grant-lost');
    assert.match(other.check('token nobody@example.com').hint!, /passgate oauth connect --mailbox nobody@example\.com/);
  });
});
