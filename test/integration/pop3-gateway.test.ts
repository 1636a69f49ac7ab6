import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { after, before, describe, it } from 'node:test';
import { promisify } from 'node:util';
import { CLI_ACTOR } from '../../src/core/actor.js';
import { startPop3Harness, type Pop3Harness } from '../helpers/pop3-harness.js';
import { Pop3Transcript } from '../helpers/pop3-transcript.js';

const run = promisify(execFile);
const b64 = (s: string) => Buffer.from(s).toString('base64');

/** Python's poplib with an unverified TLS context (passgate's and Dovecot's certificates are self-signed). */
const PY_PREAMBLE = [
  'import poplib, ssl, json, base64, sys',
  'ctx = ssl.create_default_context(); ctx.check_hostname = False; ctx.verify_mode = ssl.CERT_NONE',
  // poplib's default line limit is 2048 bytes; messages here have longer lines
  'poplib._MAXLINE = 1 << 20',
].join('\n');

/** RETR of every message, as poplib returns it (dot-unstuffed lines joined with CRLF), base64 in JSON. */
const PY_RETR_ALL = [
  'count, size = p.stat()',
  'listing = [l.decode() for l in p.list()[1]]',
  'msgs = [base64.b64encode(b"\\r\\n".join(p.retr(i + 1)[1]) + b"\\r\\n").decode() for i in range(count)]',
  'print(json.dumps({"count": count, "size": size, "list": listing, "msgs": msgs}))',
  'p.quit()',
].join('\n');

interface Fetched {
  count: number;
  size: number;
  list: string[];
  msgs: string[];
}

async function python(script: string): Promise<string> {
  const { stdout } = await run('python3', ['-c', `${PY_PREAMBLE}\n${script}`], { timeout: 60_000, maxBuffer: 64 * 1024 * 1024 });
  return stdout.trim();
}

/** passgate_sessions_closed_total{protocol="pop3",reason="revoked"}. */
async function revokedSessions(h: Pop3Harness): Promise<number> {
  const { values } = await h.app.metrics.sessionsClosed.get();
  return values.find((v) => v.labels.protocol === 'pop3' && v.labels.reason === 'revoked')?.value ?? 0;
}

describe('POP3 gateway end to end (real Dovecot POP3 checking tokens at the OAuth server)', () => {
  let h: Pop3Harness;
  const delivered: Buffer[] = [];
  before(async () => {
    h = await startPop3Harness();
    // Lines starting with a dot (dot-stuffed on the wire), 8-bit text, a long line and a body over the socket buffers.
    delivered.push(Buffer.from(`From: a@example.org\r\nTo: ${h.user}\r\nSubject: one\r\n\r\n.leading dot\r\n..two dots\r\nbody ü\r\n`));
    delivered.push(Buffer.from(`Subject: two\r\n\r\n${'x'.repeat(5000)}\r\n${'line of text\r\n'.repeat(20_000)}`));
    for (const message of delivered) await h.dovecot.deliver(h.user, message);
  });
  after(async () => h.close());

  it('poplib over implicit TLS (995-style): USER/PASS with the app password, STAT, LIST, RETR byte-exact, and the same as a direct XOAUTH2 fetch', async () => {
    const viaPassgate = JSON.parse(
      await python([`p = poplib.POP3_SSL("127.0.0.1", ${h.ports.pop3s}, context=ctx)`, `p.user("${h.user}")`, `p.pass_("${h.password}")`, PY_RETR_ALL].join('\n')),
    ) as Fetched;
    assert.equal(viaPassgate.count, delivered.length);
    assert.deepEqual(
      viaPassgate.msgs.map((m) => Buffer.from(m, 'base64')),
      delivered,
      'RETR through passgate returns the delivered messages byte for byte',
    );
    const token = await h.directToken();
    const xoauth2 = b64(`user=${h.user}\x01auth=Bearer ${token}\x01\x01`);
    const direct = JSON.parse(
      await python(
        [
          `p = poplib.POP3_SSL("127.0.0.1", ${h.dovecot.pop3sPort}, context=ctx)`,
          'p._putcmd("AUTH XOAUTH2"); assert p._getline()[0].startswith(b"+")',
          `p._putcmd("${xoauth2}"); assert p._getline()[0].startswith(b"+OK")`,
          PY_RETR_ALL,
        ].join('\n'),
      ),
    ) as Fetched;
    assert.deepEqual(viaPassgate, direct);
  });

  it('a Thunderbird-style session: CAPA, STLS, CAPA, AUTH PLAIN with a continuation, STAT, LIST, UIDL, RETR, QUIT', async () => {
    // The order Thunderbird's POP3 client (mailnews/local/src/Pop3Client.sys.mjs) uses on a STARTTLS account with
    // "normal password" and "leave messages on server": it asks CAPA again after TLS and picks SASL PLAIN from it.
    const t = await Pop3Transcript.connect(h.ports.pop3!);
    await t.until(/^\+OK/);
    t.send('CAPA');
    assert.match(await t.until(/^\.$/), /^STLS$/m);
    await t.stls();
    t.send('CAPA');
    const caps = await t.until(/^\.$/);
    assert.match(caps, /^SASL .*PLAIN/m);
    assert.doesNotMatch(caps, /^STLS$/m, 'no STLS once secure');
    t.send('AUTH PLAIN');
    await t.until(/^\+ ?$/);
    t.send(b64(`\0${h.user}\0${h.password}`));
    assert.match(await t.reply(), /^\+OK/);
    t.send('STAT');
    assert.match(await t.reply(), new RegExp(`^\\+OK ${delivered.length} \\d+`));
    t.send('LIST');
    assert.equal((await t.until(/^\.$/)).split('\r\n').filter((l) => /^\d+ \d+$/.test(l)).length, delivered.length);
    t.send('UIDL');
    const uids = (await t.until(/^\.$/)).split('\r\n').filter((l) => /^\d+ \S+$/.test(l));
    assert.equal(new Set(uids.map((l) => l.split(' ')[1])).size, delivered.length, 'a unique id per message, for "leave on server"');
    t.send('RETR 1');
    const retr = await t.until(/^\.$/);
    const body = retr.slice(retr.indexOf('\r\n') + 2, -'.\r\n'.length).replace(/^\.\./gm, '.');
    assert.equal(body, delivered[0]!.toString('utf8'));
    t.send('QUIT');
    assert.match(await t.reply(), /^\+OK/);
  });

  it('poplib over STLS (110-style): CAPA tells the truth before and after TLS; USER refused before it', async () => {
    const out = await python(
      [
        `p = poplib.POP3("127.0.0.1", ${h.ports.pop3})`,
        'print(json.dumps(sorted(p.capa().keys())))',
        `try:\n  p.user("${h.user}")\nexcept poplib.error_proto as e:\n  print(e.args[0].decode())`,
        'p.stls(context=ctx)',
        'print(json.dumps(sorted(p.capa().keys())))',
        `p.user("${h.user}"); p.pass_("${h.password}")`,
        'print(p.stat()[0])',
        'p.quit()',
      ].join('\n'),
    );
    const [before, refused, afterTls, count] = out.split('\n');
    assert.deepEqual(JSON.parse(before!), ['AUTH-RESP-CODE', 'IMPLEMENTATION', 'RESP-CODES', 'STLS']);
    assert.equal(refused, '-ERR [AUTH] Log in after STLS.');
    assert.deepEqual(JSON.parse(afterTls!), ['AUTH-RESP-CODE', 'IMPLEMENTATION', 'RESP-CODES', 'SASL', 'USER']);
    assert.equal(Number(count), delivered.length);
  });

  it('a plaintext listener refuses USER, PASS and AUTH from a network it does not list', async () => {
    const t = await Pop3Transcript.connect(h.ports['lan-other']!);
    await t.until(/^\+OK/);
    t.send('CAPA');
    const capa = await t.until(/^\.$/);
    assert.doesNotMatch(capa, /^(USER|SASL|STLS)/m);
    t.send(`USER ${h.user}`);
    assert.match(await t.reply(), /^-ERR \[AUTH\] Logins without TLS/);
    t.send(`AUTH PLAIN ${b64(`\0${h.user}\0${h.password}`)}`);
    assert.match(await t.reply(), /^-ERR \[AUTH\] Logins without TLS/);
    t.send('QUIT');
    await t.until(/^\+OK/);
    await t.waitClosed();
  });

  it('AUTH PLAIN with an initial response, and without one (continuation); another authzid is refused', async () => {
    const t = await Pop3Transcript.connect(h.ports.pop3s!, { tls: true });
    await t.until(/^\+OK/);
    t.send(`AUTH PLAIN ${b64(`\0${h.user}\0${h.password}`)}`);
    assert.match(await t.reply(), /^\+OK Logged in/);
    t.send('STAT');
    assert.match(await t.reply(), new RegExp(`^\\+OK ${delivered.length} `));
    t.send('QUIT');
    await t.until(/^\+OK/);
    t.close();

    const c = await Pop3Transcript.connect(h.ports.pop3s!, { tls: true });
    await c.until(/^\+OK/);
    c.send('AUTH PLAIN');
    assert.equal(await c.reply(), '+ \r\n');
    c.send(b64(`${h.user}\0${h.user}\0${h.password}`));
    assert.match(await c.reply(), /^\+OK Logged in/);
    c.close();

    const other = await Pop3Transcript.connect(h.ports.pop3s!, { tls: true });
    await other.until(/^\+OK/);
    other.send(`AUTH PLAIN ${b64(`boss@example.com\0${h.user}\0${h.password}`)}`);
    assert.match(await other.reply(), /^-ERR \[AUTH\]/);
    other.send('AUTH PLAIN');
    await other.reply();
    other.send('*');
    assert.match(await other.reply(), /^-ERR Authentication cancelled/);
    other.close();
  });

  it('a wrong password: -ERR [AUTH] after the failure delay, audited with protocol pop3', async () => {
    const t = await Pop3Transcript.connect(h.ports.pop3s!, { tls: true });
    await t.until(/^\+OK/);
    t.send(`USER ${h.user}`);
    await t.reply();
    const started = performance.now();
    t.send('PASS not-the-app-password');
    assert.equal(await t.reply(), '-ERR [AUTH] Authentication failed.\r\n');
    const elapsed = performance.now() - started;
    assert.ok(elapsed >= 190, `answered after ${elapsed.toFixed(0)} ms, before the 200 ms failure delay`);
    t.close();
    const [entry] = await h.app.audit.query({ username: h.user, limit: 1 });
    assert.deepEqual([entry!.protocol, entry!.reason], ['pop3', 'invalid-credentials']);
  });

  it('a password without the pop3 scope is refused (-ERR [AUTH], audited scope-denied)', async () => {
    const { password } = await h.app.admin.appPasswords.create(CLI_ACTOR, { username: h.user, name: 'SMTP only', scopes: ['smtp', 'imap'] });
    const t = await Pop3Transcript.connect(h.ports.pop3s!, { tls: true });
    await t.until(/^\+OK/);
    t.send(`USER ${h.user}`);
    await t.reply();
    t.send(`PASS ${password}`);
    assert.match(await t.reply(), /^-ERR \[AUTH\]/);
    t.close();
    const [entry] = await h.app.audit.query({ username: h.user, limit: 1 });
    assert.deepEqual([entry!.protocol, entry!.reason], ['pop3', 'scope-denied']);
  });

  it('revoking the app password closes a live POP3 session within a few seconds', async () => {
    const { password, view } = await h.app.admin.appPasswords.create(CLI_ACTOR, { username: h.user, name: 'Phone' });
    assert.deepEqual(view.scopes, ['smtp', 'imap', 'pop3'], 'a new password gets every protocol by default');
    const t = await Pop3Transcript.connect(h.ports.pop3s!, { tls: true });
    await t.until(/^\+OK/);
    t.send(`USER ${h.user}`);
    await t.reply();
    t.send(`PASS ${password}`);
    await t.until(/^\+OK Logged in/);
    t.send('NOOP');
    await t.until(/^\+OK/);
    const revokedBefore = await revokedSessions(h);
    await h.app.admin.appPasswords.revoke(CLI_ACTOR, view.id);
    // The registry polls every second here, so 10 s only catches a hang; the metric says the revocation closed it.
    await t.waitClosed(10_000);
    assert.equal(await revokedSessions(h), revokedBefore + 1);
  });

  it('-ERR [SYS/PERM] when the upstream refuses the token even after a fresh one (POP off, no permission), audited upstream-rejected', async () => {
    // A passgate of its own: it ends holding a token the provider forgot, within the forced-refresh window, and the
    // shared one must go on logging in for the other tests.
    const h = await startPop3Harness();
    try {
      const { password } = await h.app.admin.appPasswords.create(CLI_ACTOR, { username: 'helpdesk@example.com', name: 'Ticketing' });
      await h.directToken(); // passgate holds a cached token
      // The provider forgets its tokens: the cached one is refused, dropped, and a fresh one logs in.
      h.oauth.forgetAccessTokens();
      const first = await Pop3Transcript.connect(h.ports.pop3s!, { tls: true });
      await first.until(/^\+OK/);
      first.send(`AUTH PLAIN ${b64(`\0helpdesk@example.com\0${password}`)}`);
      assert.match(await first.reply(), /^\+OK Logged in/);
      first.send('QUIT');
      await first.until(/^\+OK/);
      first.close();
      // Within the forced-refresh window, a second refusal is the verdict.
      h.oauth.forgetAccessTokens();
      const t = await Pop3Transcript.connect(h.ports.pop3s!, { tls: true });
      await t.until(/^\+OK/);
      t.send(`AUTH PLAIN ${b64(`\0helpdesk@example.com\0${password}`)}`);
      assert.match(await t.reply(), /^-ERR \[SYS\/PERM\]/);
      t.close();
      const [entry] = await h.app.audit.query({ username: 'helpdesk@example.com', limit: 1 });
      assert.deepEqual([entry!.protocol, entry!.reason], ['pop3', 'upstream-rejected']);
    } finally {
      await h.close();
    }
  });

  it('metrics and the audit carry protocol pop3', async () => {
    // A session of its own (each test stands alone): log in, read, and be cut off by a revocation.
    const { password, view } = await h.app.admin.appPasswords.create(CLI_ACTOR, { username: h.user, name: 'Metrics' });
    const t = await Pop3Transcript.connect(h.ports.pop3s!, { tls: true });
    await t.until(/^\+OK/);
    t.send(`USER ${h.user}`);
    await t.reply();
    t.send(`PASS ${password}`);
    await t.until(/^\+OK Logged in/);
    t.send('RETR 1');
    await t.until(/^\.$/);
    await h.app.admin.appPasswords.revoke(CLI_ACTOR, view.id);
    await t.waitClosed(10_000);
    const [ok] = await h.app.audit.query({ username: h.user, protocol: 'pop3', limit: 50 }).then((all) => all.filter((e) => e.reason === 'ok'));
    assert.ok(ok, 'a successful POP3 login is audited');
    const text = await h.app.metrics.registry.metrics();
    assert.match(text, /passgate_pop3_proxied_bytes_total\{direction="upstream-to-client"\} [1-9]/);
    assert.match(text, /passgate_sessions_closed_total\{protocol="pop3",reason="revoked"\} [1-9]/);
    assert.match(text, /passgate_upstream_auth_duration_seconds_count\{protocol="pop3",result="success"\} [1-9]/);
  });
});
