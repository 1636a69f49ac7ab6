import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { once } from 'node:events';
import { connect } from 'node:net';
import { after, before, describe, it } from 'node:test';
import { connect as tlsConnect } from 'node:tls';
import { promisify } from 'node:util';
import { ImapFlow } from 'imapflow';
import { startImapHarness, type ImapHarness } from '../helpers/imap-harness.js';
import { ImapTranscript } from '../helpers/imap-transcript.js';
import { CLI_ACTOR } from '../../src/core/actor.js';

const run = promisify(execFile);
const b64 = (s: string) => Buffer.from(s).toString('base64');

describe('IMAP gateway end to end (real Dovecot checking tokens at the OAuth server)', () => {
  let h: ImapHarness;
  before(async () => {
    h = await startImapHarness();
  });
  after(async () => h.close());

  const throughPassgate = (over: Partial<ConstructorParameters<typeof ImapFlow>[0]> = {}) =>
    new ImapFlow({
      host: '127.0.0.1',
      port: h.ports.imaps!,
      secure: true,
      auth: { user: h.user, pass: h.password },
      tls: { rejectUnauthorized: false },
      logger: false,
      ...over,
    });

  const direct = async () =>
    new ImapFlow({
      host: '127.0.0.1',
      port: h.dovecot.imapsPort,
      secure: true,
      auth: { user: h.user, accessToken: await h.directToken() },
      tls: { rejectUnauthorized: false },
      logger: false,
    });

  it('imapflow logs in with the app password (implicit TLS), APPENDs, SELECTs and FETCHes bodies byte-identical to a direct fetch', async () => {
    const client = throughPassgate();
    await client.connect();
    const raw = Buffer.from(`From: a@example.org\r\nTo: ${h.user}\r\nSubject: through passgate\r\n\r\n${'body line ü\r\n'.repeat(2000)}`);
    await client.append('INBOX', raw);
    const lock = await client.getMailboxLock('INBOX');
    const viaPassgate: Buffer[] = [];
    try {
      for await (const message of client.fetch('1:*', { source: true })) viaPassgate.push(message.source!);
    } finally {
      lock.release();
    }
    await client.logout();

    const plain = await direct();
    await plain.connect();
    const directLock = await plain.getMailboxLock('INBOX');
    const viaDirect: Buffer[] = [];
    try {
      for await (const message of plain.fetch('1:*', { source: true })) viaDirect.push(message.source!);
    } finally {
      directLock.release();
    }
    await plain.logout();
    assert.ok(viaPassgate.length >= 1);
    assert.deepEqual(viaPassgate, viaDirect);
    assert.ok(viaPassgate.some((m) => m.equals(raw)), 'the appended message comes back byte for byte');
  });

  it('imapflow over STARTTLS (143-style), and IDLE receives a new-message notification', async () => {
    const client = throughPassgate({ port: h.ports.imap!, secure: false, doSTARTTLS: true });
    await client.connect();
    const lock = await client.getMailboxLock('INBOX');
    try {
      const before = client.mailbox ? (client.mailbox as { exists: number }).exists : 0;
      const notified = new Promise<number>((resolve) => client.on('exists', (data: { count: number }) => resolve(data.count)));
      const idling = client.idle();
      await new Promise((r) => setTimeout(r, 300));
      await h.dovecot.deliver(h.user, Buffer.from('Subject: new mail during IDLE\r\n\r\nhello\r\n'));
      const count = await Promise.race([notified, new Promise<number>((_, reject) => setTimeout(() => reject(new Error('no EXISTS within 10 s')), 10_000))]);
      assert.equal(count, before + 1);
      void idling;
    } finally {
      lock.release();
    }
    await client.logout();
  });

  it('Python imaplib: LOGIN over TLS and after STARTTLS, AUTHENTICATE PLAIN with a continuation, SELECT, FETCH, LOGOUT', async () => {
    await h.dovecot.deliver(h.user, Buffer.from('Subject: for imaplib\r\n\r\nhello\r\n'));
    const script = [
      'import imaplib, ssl',
      'ctx = ssl.create_default_context(); ctx.check_hostname = False; ctx.verify_mode = ssl.CERT_NONE',
      `m = imaplib.IMAP4_SSL("127.0.0.1", ${h.ports.imaps}, ssl_context=ctx)`,
      `print(m.login("${h.user}", "${h.password}")[0])`,
      'typ, data = m.select("INBOX"); print(typ, int(data[0]) > 0)',
      'typ, data = m.fetch("1", "(BODY.PEEK[HEADER.FIELDS (SUBJECT)])"); print(typ)',
      'print(m.logout()[0])',
      `m = imaplib.IMAP4_SSL("127.0.0.1", ${h.ports.imaps}, ssl_context=ctx)`,
      `print(m.authenticate("PLAIN", lambda _: b"\\0${h.user}\\0${h.password}")[0])`,
      'print(m.logout()[0])',
      `m = imaplib.IMAP4("127.0.0.1", ${h.ports.imap})`,
      'print(m.starttls(ssl_context=ctx)[0])',
      `print(m.login("${h.user}", "${h.password}")[0])`,
      'print(m.logout()[0])',
    ].join('\n');
    const { stdout } = await run('python3', ['-c', script], { timeout: 30_000 });
    assert.equal(stdout.trim(), ['OK', 'OK True', 'OK', 'BYE', 'OK', 'BYE', 'OK', 'OK', 'BYE'].join('\n'));
  });

  it('LOGIN with synchronizing literals and AUTHENTICATE PLAIN with SASL-IR, as real clients send them', async () => {
    const t = await ImapTranscript.connect(h.ports.imaps!, { tls: true });
    await t.until(/^\* OK/);
    t.send(`a LOGIN {${Buffer.byteLength(h.user)}}`);
    await t.until(/^\+ /);
    t.send(`${h.user} {${h.password.length}}`);
    await t.until(/^\+ /);
    t.send(h.password);
    assert.match(await t.until(/^a /), /^a OK \[CAPABILITY [^\]]*IMAP4rev1/m);
    t.send('b LOGOUT');
    await t.until(/^b OK/);
    t.close();

    const ir = await ImapTranscript.connect(h.ports.imaps!, { tls: true });
    await ir.until(/^\* OK/);
    ir.send(`a AUTHENTICATE PLAIN ${b64(`\0${h.user}\0${h.password}`)}`);
    await ir.until(/^a OK/);
    ir.close();
  });

  it('before TLS on 143: LOGINDISABLED, no AUTH=, and LOGIN refused', async () => {
    const t = await ImapTranscript.connect(h.ports.imap!);
    const greeting = await t.until(/^\* OK/);
    assert.match(greeting, /LOGINDISABLED/);
    assert.match(greeting, /STARTTLS/);
    assert.doesNotMatch(greeting, /AUTH=/);
    t.send(`a LOGIN ${h.user} ${h.password}`);
    await t.until(/^a NO \[PRIVACYREQUIRED\]/);
    await t.starttls();
    t.send('c CAPABILITY');
    const caps = await t.until(/^c OK/);
    assert.match(caps, /AUTH=PLAIN/);
    assert.doesNotMatch(caps, /LOGINDISABLED|STARTTLS/);
    t.close();
    const lan = await ImapTranscript.connect(h.ports['lan-other']!);
    assert.match(await lan.until(/^\* OK/), /LOGINDISABLED/);
    lan.send(`a LOGIN ${h.user} ${h.password}`);
    await lan.until(/^a NO \[PRIVACYREQUIRED\]/);
    lan.close();
  });

  it('wrong passwords get NO [AUTHENTICATIONFAILED]; the third closes the connection', async () => {
    const t = await ImapTranscript.connect(h.ports.imaps!, { tls: true });
    await t.until(/^\* OK/);
    for (const tag of ['a', 'b']) {
      t.send(`${tag} LOGIN ${h.user} wrong-password-${tag}`);
      await t.until(new RegExp(`^${tag} NO \\[AUTHENTICATIONFAILED\\] Authentication failed\\.$`));
    }
    t.send(`c LOGIN nobody@example.com abcd-efgh-ijkl-mnop`);
    await t.until(/^c NO \[AUTHENTICATIONFAILED\]/);
    await t.until(/^\* BYE/);
    await t.waitClosed();
  });

  it('answers BAD to malformed and unknown commands, and refuses an oversized literal without waiting for it', async () => {
    const t = await ImapTranscript.connect(h.ports.imaps!, { tls: true });
    await t.until(/^\* OK/);
    t.send('a SELECT INBOX');
    await t.until(/^a BAD/);
    t.send('b LOGIN "unterminated');
    await t.until(/^b BAD/);
    t.send('c FROBNICATE');
    await t.until(/^c BAD/);
    t.send('d LOGIN {50000000}');
    await t.until(/^d BAD/);
    t.send('e NOOP');
    await t.until(/^e OK/);
    t.send('f ID ("name" "test")');
    await t.until(/^f OK/);
    t.close();
  });

  it('forwards a command pipelined right after LOGIN to the upstream', async () => {
    const t = await ImapTranscript.connect(h.ports.imaps!, { tls: true });
    await t.until(/^\* OK/);
    t.write(`a LOGIN ${h.user} ${h.password}\r\nb SELECT INBOX\r\n`);
    await t.until(/^a OK/);
    await t.until(/^b OK \[READ-WRITE\]/);
    t.close();
  });

  it('takes the audited client address from a PROXY v1 header sent by a listed balancer', async () => {
    const socket = connect(h.ports['behind-proxy']!, '127.0.0.1');
    await once(socket, 'connect');
    socket.write('PROXY TCP4 198.51.100.33 127.0.0.1 40000 993\r\n');
    const secure = tlsConnect({ socket, rejectUnauthorized: false });
    await once(secure, 'secureConnect');
    const t = ImapTranscript.wrap(secure);
    await t.until(/^\* OK/);
    t.send(`a LOGIN ${h.user} not-the-password`);
    await t.until(/^a NO/);
    t.close();
    const [entry] = await h.app.audit.query({ username: h.user, limit: 1 });
    assert.deepEqual([entry!.clientIp, entry!.protocol], ['198.51.100.33', 'imap']);
  });

  it('revoking the app password closes a live session within a few seconds', async () => {
    const { password, view } = await h.app.admin.appPasswords.create(CLI_ACTOR, { username: h.user, name: 'Phone' });
    const t = await ImapTranscript.connect(h.ports.imaps!, { tls: true });
    await t.until(/^\* OK/);
    t.send(`a LOGIN ${h.user} ${password}`);
    await t.until(/^a OK/);
    t.send('b SELECT INBOX');
    await t.until(/^b OK/);
    t.send('c IDLE');
    await t.until(/^\+ idling/i);
    await h.app.admin.appPasswords.revoke(CLI_ACTOR, view.id);
    // The BYE names the cause; the registry polls every second here, so 10 s only catches a hang, never a slow machine.
    await t.until(/^\* BYE .*revoked/);
    await t.waitClosed(10_000);
  });

  it('answers NO [AUTHORIZATIONFAILED] when the upstream refuses the token, and audits upstream-rejected', async () => {
    const { password } = await h.app.admin.appPasswords.create(CLI_ACTOR, { username: 'other@example.com', name: 'Tablet' });
    await h.directToken(); // passgate holds a cached token
    // The provider forgets every token it issued: Dovecot's introspection now says inactive. passgate drops the
    // refused cached token and logs in with a fresh one (test/integration/token-invalidation.test.ts)...
    h.oauth.forgetAccessTokens();
    const first = await ImapTranscript.connect(h.ports.imaps!, { tls: true });
    await first.until(/^\* OK/);
    first.send(`a LOGIN other@example.com ${password}`);
    await first.until(/^a OK/);
    first.send('b LOGOUT');
    await first.until(/^b OK/);
    first.close();
    // ...and when that one is refused too, within the forced-refresh window, the refusal is the verdict.
    h.oauth.forgetAccessTokens();
    const t = await ImapTranscript.connect(h.ports.imaps!, { tls: true });
    await t.until(/^\* OK/);
    t.send(`a LOGIN other@example.com ${password}`);
    await t.until(/^a NO \[AUTHORIZATIONFAILED\]/);
    t.close();
    const [entry] = await h.app.audit.query({ username: 'other@example.com', limit: 1 });
    assert.equal(entry!.reason, 'upstream-rejected');
  });

  it('answers NO [UNAVAILABLE] when the upstream cannot be reached, and audits it', async () => {
    // A second gateway pointed at a closed port; the shared harness keeps serving the other tests.
    const broken = await startImapHarness({ imap: { upstream: { host: '127.0.0.1', port: 1, tls: 'implicit', connect_timeout_seconds: 2 } } });
    try {
      const t = await ImapTranscript.connect(broken.ports.imaps!, { tls: true });
      await t.until(/^\* OK/);
      t.send(`a LOGIN ${broken.user} ${broken.password}`);
      await t.until(/^a NO \[UNAVAILABLE\]/);
      t.close();
      const [entry] = await broken.app.audit.query({ username: broken.user, limit: 1 });
      assert.equal(entry!.reason, 'unavailable');
    } finally {
      await broken.close();
    }
  });
});

describe('IMAP gateway under hostile pre-login input', () => {
  let h: ImapHarness;
  before(async () => {
    h = await startImapHarness();
  });
  after(async () => h.close());

  it('says BYE to a client that sends bad lines without end (bad lines count as commands)', async () => {
    const t = await ImapTranscript.connect(h.ports.imaps!, { tls: true });
    await t.until(/^\* OK/);
    t.write('\r\n'.repeat(500));
    await t.until(/^\* BYE Too many commands before login/);
    await t.waitClosed();
  });

  it('passes a large literal pipelined right after LOGIN (APPEND {20000+}) to the upstream intact', async () => {
    const body = `Subject: pipelined append\r\n\r\n${'p'.repeat(20_000 - 29)}\r\n`;
    const literal = Buffer.byteLength(body);
    const t = await ImapTranscript.connect(h.ports.imaps!, { tls: true });
    await t.until(/^\* OK/);
    t.write(`a LOGIN ${h.user} ${h.password}\r\nb APPEND INBOX {${literal}+}\r\n${body}\r\nc NOOP\r\n`);
    await t.until(/^a OK/);
    await t.until(/^b OK/);
    await t.until(/^c OK/);
    t.close();
  });
});
