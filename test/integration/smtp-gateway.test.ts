import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { connect } from 'node:net';
import { once } from 'node:events';
import { after, before, describe, it } from 'node:test';
import { promisify } from 'node:util';
import nodemailer from 'nodemailer';
import { startSmtpHarness, type SmtpHarness } from '../helpers/smtp-harness.js';
import { plain, SmtpTranscript } from '../helpers/smtp-transcript.js';
import { CLI_ACTOR } from '../../src/core/actor.js';

const run = promisify(execFile);

describe('SMTP gateway end to end (real TLS, real upstream demanding XOAUTH2, real OAuth server)', () => {
  let h: SmtpHarness;
  before(async () => {
    h = await startSmtpHarness();
  });
  after(async () => h.close());

  const transport = (listener: 'submission' | 'submissions', auth: { user: string; pass: string; method?: string }) =>
    nodemailer.createTransport({
      host: '127.0.0.1',
      port: h.ports[listener],
      secure: listener === 'submissions',
      requireTLS: listener === 'submission',
      auth: { user: auth.user, pass: auth.pass },
      ...(auth.method ? { authMethod: auth.method } : {}),
      tls: { rejectUnauthorized: false },
    });

  const message = (id: string, body = 'Scanned document attached.\r\n') =>
    Buffer.from(
      `From: scanner@example.com\r\nTo: boss@example.org\r\nSubject: Scan ${id}\r\nMessage-ID: <${id}@scanner.test>\r\n\r\n${body}`,
    );

  it('relays over STARTTLS with AUTH PLAIN, byte-identical, as the mailbox with its token', async () => {
    // Lines starting with "." must survive dot-stuffing both ways; 8-bit and a long line too.
    const raw = message('plain-1', '.hidden line\r\n..two dots\r\nnaïve café\r\n' + 'x'.repeat(998) + '\r\n.\r\nend\r\n');
    const info = await transport('submission', { user: h.user, pass: h.password, method: 'PLAIN' }).sendMail({
      envelope: { from: 'scanner@example.com', to: ['boss@example.org'] },
      raw,
    });
    assert.match(info.response, /^250 2\.6\.0 <queued-\d+@upstream\.test> Queued mail for delivery$/, 'the upstream\'s own 250 reply');
    const delivered = h.upstream.deliveries.at(-1)!;
    assert.equal(delivered.mailbox, 'scanner@example.com');
    assert.deepEqual([delivered.from, delivered.to], ['scanner@example.com', ['boss@example.org']]);
    assert.ok(delivered.raw!.equals(raw), 'byte-identical');
  });

  it('relays over implicit TLS with AUTH LOGIN, with the password typed in capitals and without dashes', async () => {
    const before = h.upstream.deliveries.length;
    await transport('submissions', { user: h.user.toUpperCase(), pass: h.password.replace(/-/g, '').toUpperCase(), method: 'LOGIN' }).sendMail({
      envelope: { from: 'scanner@example.com', to: ['boss@example.org'] },
      raw: message('login-1'),
    });
    assert.equal(h.upstream.deliveries.length, before + 1);
  });

  it('works with Python\'s smtplib (STARTTLS, login, sendmail)', async () => {
    const before = h.upstream.deliveries.length;
    const script = [
      'import smtplib, ssl, sys',
      'ctx = ssl.create_default_context(); ctx.check_hostname = False; ctx.verify_mode = ssl.CERT_NONE',
      `s = smtplib.SMTP("127.0.0.1", ${h.ports.submission}, timeout=20)`,
      's.starttls(context=ctx)',
      `s.login("${h.user}", "${h.password}")`,
      'refused = s.sendmail("scanner@example.com", ["boss@example.org"], b"Subject: from python\\r\\n\\r\\nhello\\r\\n")',
      'print("refused", refused)',
      's.quit()',
    ].join('\n');
    const { stdout } = await run('python3', ['-c', script], { timeout: 30_000 });
    assert.match(stdout, /refused \{\}/);
    assert.equal(h.upstream.deliveries.length, before + 1);
    assert.match(h.upstream.deliveries.at(-1)!.raw!.toString(), /Subject: from python/);
  });

  it('refuses at RCPT a recipient the upstream refuses, with the upstream\'s code and text', async () => {
    // The upstream writes its enhanced code (5.1.1 for RCPT) in front of this text itself.
    h.upstream.refuseRecipients.set('nobody@example.org', { code: 550, text: 'RESOLVER.ADR.RecipientNotFound; Recipient not found by SMTP address lookup' });
    const t = await SmtpTranscript.connect(h.ports.submissions!, { tls: true });
    await t.expect(/^220 passgate\.test/);
    t.send('EHLO client.test');
    await t.expect(/^250 /m);
    t.send(`AUTH PLAIN ${plain(h.user, h.password)}`);
    await t.expect(/^235 /);
    t.send('MAIL FROM:<scanner@example.com>');
    await t.expect(/^250 /);
    t.send('RCPT TO:<nobody@example.org>');
    await t.expect(/^550 5\.1\.1 RESOLVER\.ADR\.RecipientNotFound; Recipient not found by SMTP address lookup\r\n$/);
    t.send('RCPT TO:<boss@example.org>');
    await t.expect(/^250 /);
    t.send('DATA');
    await t.expect(/^354 /);
    t.write('Subject: one of two\r\n\r\nhi\r\n.\r\n');
    await t.expect(/^250 2\.6\.0 /);
    assert.deepEqual(h.upstream.deliveries.at(-1)!.to, ['boss@example.org']);
    t.send('QUIT');
    t.close();
  });

  it('answers MAIL at once and gives the upstream\'s refusal of MAIL at the first RCPT (and every later one)', async () => {
    // passgate answers MAIL once its own checks pass and reads the upstream's verdict on it with the first RCPT,
    // which it pipelines behind the MAIL: the refusal reaches the client one command later, unchanged.
    h.upstream.refuseSenders.set('scanner@example.com', { code: 550, text: 'SendAsDenied; not allowed to send as this sender' });
    const before = h.upstream.deliveries.length;
    const t = await SmtpTranscript.loggedIn(h.ports.submissions!, h.user, h.password);
    try {
      t.send('MAIL FROM:<scanner@example.com>');
      await t.expect(/^250 /);
      t.send('RCPT TO:<boss@example.org>');
      await t.expect(/^550 5\.1\.1 SendAsDenied; not allowed to send as this sender\r\n$/);
      t.send('RCPT TO:<other@example.org>');
      await t.expect(/^550 5\.1\.1 SendAsDenied; not allowed to send as this sender\r\n$/);
      t.send('DATA');
      await t.expect(/^503 /);
      // The next transaction on the same connection is relayed normally once the upstream takes the sender.
      h.upstream.refuseSenders.clear();
      t.send('RSET');
      await t.expect(/^250 /);
      t.send('MAIL FROM:<scanner@example.com>');
      await t.expect(/^250 /);
      t.send('RCPT TO:<boss@example.org>');
      await t.expect(/^250 /);
      t.send('DATA');
      await t.expect(/^354 /);
      t.write('Subject: after a refusal\r\n\r\nhi\r\n.\r\n');
      await t.expect(/^250 2\.6\.0 /);
      assert.equal(h.upstream.deliveries.length, before + 1);
      assert.deepEqual(h.upstream.deliveries.at(-1)!.to, ['boss@example.org']);
      t.send('QUIT');
    } finally {
      h.upstream.refuseSenders.clear();
      t.close();
    }
  });

  it('pipelines many transactions on one connection, each delivered once with its own recipients', async () => {
    const before = h.upstream.deliveries.length;
    const t = await SmtpTranscript.loggedIn(h.ports.submissions!, h.user, h.password);
    try {
      // A client using PIPELINING sends MAIL, RCPT, RCPT and DATA in one go (RFC 2920).
      for (let i = 0; i < 3; i++) {
        t.write(`MAIL FROM:<scanner@example.com>\r\nRCPT TO:<a${i}@example.org>\r\nRCPT TO:<b${i}@example.org>\r\nDATA\r\n`);
        for (const code of ['250', '250', '250', '354']) await t.expect(new RegExp(`^${code} `));
        t.write(`Subject: pipelined ${i}\r\n\r\nhi\r\n.\r\n`);
        await t.expect(/^250 2\.6\.0 /);
      }
      assert.equal(h.upstream.deliveries.length, before + 3);
      assert.deepEqual(h.upstream.deliveries.slice(before).map((d) => d.to), [0, 1, 2].map((i) => [`a${i}@example.org`, `b${i}@example.org`]));
      t.send('QUIT');
    } finally {
      t.close();
    }
  });

  it('answers 4xx, and delivers nothing, when the upstream drops the connection in the middle of DATA', async () => {
    const before = h.upstream.deliveries.length;
    h.upstream.dropDuringDataAfter = 1000;
    await assert.rejects(
      transport('submission', { user: h.user, pass: h.password }).sendMail({
        envelope: { from: 'scanner@example.com', to: ['boss@example.org'] },
        raw: message('dropped', 'y'.repeat(200_000) + '\r\n'),
      }),
      (error: { responseCode?: number; response?: string }) => {
        assert.equal(error.responseCode, 451);
        assert.match(error.response ?? '', /^451 4\.4\.2 /);
        return true;
      },
    );
    assert.equal(h.upstream.deliveries.length, before);
    // The next message goes through on a fresh upstream session.
    await transport('submission', { user: h.user, pass: h.password }).sendMail({ envelope: { from: 'scanner@example.com', to: ['boss@example.org'] }, raw: message('after-drop') });
    assert.equal(h.upstream.deliveries.length, before + 1);
  });

  it('refuses AUTH before STARTTLS on the submission port', async () => {
    const t = await SmtpTranscript.connect(h.ports.submission!);
    await t.expect(/^220 /);
    t.send('EHLO client.test');
    const ehlo = await t.expect(/^250 /m);
    assert.match(ehlo, /STARTTLS/);
    // RFC 3207 §4.2: AUTH is not offered where it would be refused, so a client never sends its password in clear.
    assert.doesNotMatch(ehlo, /AUTH/);
    // A client that sends it anyway hears smtp-server's own refusal.
    t.send(`AUTH PLAIN ${plain(h.user, h.password)}`);
    await t.expect(/^538 Error: Must issue a STARTTLS command first\r\n$/);
    await t.starttls();
    t.send('EHLO client.test');
    assert.match(await t.expect(/^250 /m), /^250[- ]AUTH PLAIN LOGIN\r$/m);
    t.close();
  });

  it('a plaintext listener accepts AUTH only from the networks it lists', async () => {
    const refused = await SmtpTranscript.connect(h.ports['lan-other']!);
    await refused.expect(/^220 /);
    refused.send('EHLO printer');
    assert.doesNotMatch(await refused.expect(/^250 /m), /AUTH/, 'not offered outside plaintext_auth_from');
    refused.send(`AUTH PLAIN ${plain(h.user, h.password)}`);
    await refused.expect(/^538 5\.7\.11 /);
    refused.close();

    const listed = await SmtpTranscript.connect(h.ports['lan-local']!);
    await listed.expect(/^220 /);
    listed.send('EHLO printer');
    assert.match(await listed.expect(/^250 /m), /^250[- ]AUTH PLAIN LOGIN\r$/m, 'offered to a listed network');
    listed.close();

    const before = h.upstream.deliveries.length;
    await nodemailer
      .createTransport({ host: '127.0.0.1', port: h.ports['lan-local'], secure: false, ignoreTLS: true, auth: { user: h.user, pass: h.password } })
      .sendMail({ envelope: { from: 'scanner@example.com', to: ['boss@example.org'] }, raw: message('lan') });
    assert.equal(h.upstream.deliveries.length, before + 1);
  });

  it('takes the audited client address from a PROXY v2 header sent by a listed balancer', async () => {
    const socket = connect(h.ports['behind-proxy']!, '127.0.0.1');
    await once(socket, 'connect');
    const header = Buffer.concat([
      Buffer.from([0x0d, 0x0a, 0x0d, 0x0a, 0x00, 0x0d, 0x0a, 0x51, 0x55, 0x49, 0x54, 0x0a]),
      Buffer.from([0x21, 0x11, 0x00, 0x0c]),
      Buffer.from([203, 0, 113, 77, 127, 0, 0, 1]),
      Buffer.from([0xc3, 0x50, 0x02, 0x4b]),
    ]);
    socket.write(header);
    const t = SmtpTranscript.wrap(socket);
    await t.expect(/^220 /);
    t.send('EHLO client.test');
    await t.expect(/^250 /m);
    await t.starttls();
    t.send('EHLO client.test');
    await t.expect(/^250 /m);
    t.send(`AUTH PLAIN ${plain(h.user, 'wrong-pass-word-xxxx')}`);
    await t.expect(/^535 5\.7\.8 Authentication credentials invalid/);
    t.close();
    const [entry] = await h.app.audit.query({ username: h.user, limit: 1 });
    assert.deepEqual([entry!.clientIp, entry!.reason], ['203.0.113.77', 'invalid-credentials']);
  });

  it('answers wrong passwords with 535 5.7.8 and disconnects after the third', async () => {
    const t = await SmtpTranscript.connect(h.ports.submissions!, { tls: true });
    await t.expect(/^220 /);
    t.send('EHLO client.test');
    await t.expect(/^250 /m);
    for (let i = 0; i < 2; i++) {
      t.send(`AUTH PLAIN ${plain(h.user, `wrong-guess-${i}`)}`);
      await t.expect(/^535 5\.7\.8 Authentication credentials invalid\r\n$/);
    }
    t.send(`AUTH PLAIN ${plain('nobody@example.com', 'abcd-efgh-ijkl-mnop')}`);
    await t.expect(/^421 4\.7\.0 /);
    await t.waitClosed();
  });

  /** Logs in over implicit TLS on a transcript and returns it ready for MAIL. */
  function loggedIn(user: string, password: string): Promise<SmtpTranscript> {
    return SmtpTranscript.loggedIn(h.ports.submissions!, user, password);
  }

  it('applies the password\'s mail policy: senders, recipient domains, size, messages per hour', async () => {
    const { password } = await h.app.admin.appPasswords.create(CLI_ACTOR, {
      username: 'printer@example.com',
      name: 'Printer',
      policy: { allowedSenders: ['scans@example.com'], allowedRecipientDomains: ['example.org'], maxMessageBytes: 2000, maxMessagesPerHour: 2 },
    });
    const t = await loggedIn('printer@example.com', password);
    t.send('MAIL FROM:<ceo@example.com>');
    await t.expect(/^550 5\.7\.1 Sender address not allowed for this login\r\n$/);
    t.send('MAIL FROM:<scans@example.com> SIZE=5000');
    await t.expect(/^552 5\.3\.4 /);
    t.send('MAIL FROM:<Scans@Example.com>');
    await t.expect(/^250 /);
    t.send('RCPT TO:<someone@elsewhere.net>');
    await t.expect(/^550 5\.7\.1 Recipient domain not allowed for this login\r\n$/);
    t.send('RCPT TO:<boss@example.org>');
    await t.expect(/^250 /);
    const before = h.upstream.deliveries.length;
    t.send('DATA');
    await t.expect(/^354 /);
    t.write(`Subject: too big\r\n\r\n${'z'.repeat(3000)}\r\n.\r\n`);
    await t.expect(/^552 5\.3\.4 Message too big for this login/);
    for (let i = 0; i < 2; i++) {
      t.send('MAIL FROM:<printer@example.com>');
      await t.expect(/^250 /);
      t.send('RCPT TO:<boss@example.org>');
      await t.expect(/^250 /);
      t.send('DATA');
      await t.expect(/^354 /);
      t.write(`Subject: scan ${i}\r\n\r\nok\r\n.\r\n`);
      await t.expect(/^250 /);
    }
    t.send('MAIL FROM:<printer@example.com>');
    await t.expect(/^451 4\.7\.1 Message rate limit reached for this login/);
    assert.equal(h.upstream.deliveries.length, before + 2, 'the oversized message never reached the upstream');
    t.close();
  });

  it('passes SIZE, BODY=8BITMIME, SMTPUTF8 and DSN parameters through to the upstream', async () => {
    const t = await loggedIn(h.user, h.password);
    t.send('MAIL FROM:<scanner@example.com> SIZE=100 BODY=8BITMIME SMTPUTF8 RET=HDRS ENVID=scan+2B42 X-FOO=bar');
    await t.expect(/^250 /);
    t.send('RCPT TO:<boss@example.org> NOTIFY=SUCCESS,FAILURE');
    await t.expect(/^250 /);
    t.send('DATA');
    await t.expect(/^354 /);
    t.write('Subject: params\r\n\r\ngrüße\r\n.\r\n');
    await t.expect(/^250 /);
    const args = h.upstream.deliveries.at(-1)!.mailArgs;
    assert.deepEqual(args, { SIZE: '100', BODY: '8BITMIME', SMTPUTF8: true, RET: 'HDRS', ENVID: 'scan+42' }, 'X-FOO is not relayed');
    t.close();
  });

  it('reuses upstream sessions across client connections (one connection per message, as scanners do)', async () => {
    const connectionsBefore = h.upstream.connections;
    const loginsBefore = h.upstream.logins;
    for (let i = 0; i < 8; i++) {
      await transport('submission', { user: h.user, pass: h.password }).sendMail({ envelope: { from: 'scanner@example.com', to: ['boss@example.org'] }, raw: message(`reuse-${i}`) });
    }
    assert.ok(h.upstream.connections - connectionsBefore <= 1, `upstream connections opened: ${h.upstream.connections - connectionsBefore}`);
    assert.ok(h.upstream.logins - loginsBefore <= 1);
  });

  it('AUTH PLAIN: an authzid for another identity is refused; a name left in authzid alone is the user', async () => {
    const t = await SmtpTranscript.connect(h.ports.submissions!, { tls: true });
    await t.expect(/^220 /);
    t.send('EHLO client.test');
    await t.expect(/^250 /m);
    t.send(`AUTH PLAIN ${Buffer.from(`ceo@example.com\0${h.user}\0${h.password}`).toString('base64')}`);
    await t.expect(/^535 5\.7\.8 /);
    t.send(`AUTH PLAIN ${Buffer.from(`${h.user}\0\0${h.password}`).toString('base64')}`);
    await t.expect(/^235 /);
    t.close();
  });

  it('answers the upstream\'s refusal of DATA itself, reads the whole message, and stays up', async () => {
    const t = await loggedIn(h.user, h.password);
    h.upstream.refuseData = true;
    try {
      t.send('MAIL FROM:<scanner@example.com>');
      await t.expect(/^250 /);
      t.send('RCPT TO:<boss@example.org>');
      await t.expect(/^250 /);
      t.send('DATA');
      await t.expect(/^354 /);
      t.write(`Subject: refused\r\n\r\n${'r'.repeat(2_000_000)}\r\n.\r\n`);
      await t.expect(/^500 5\.5\.2 /, 15_000); // the upstream's own refusal of DATA, passed through
    } finally {
      h.upstream.refuseData = false;
    }
    t.send('NOOP');
    await t.expect(/^250 /);
    t.close();
    await transport('submission', { user: h.user, pass: h.password }).sendMail({ envelope: { from: 'scanner@example.com', to: ['boss@example.org'] }, raw: message('after-refused-data') });
  });

  it('a connection whose app password is revoked after AUTH cannot send another message', async () => {
    const { password, view } = await h.app.admin.appPasswords.create(CLI_ACTOR, { username: h.user, name: 'Revoked mid-session' });
    const t = await loggedIn(h.user, password);
    t.send('MAIL FROM:<scanner@example.com>');
    await t.expect(/^250 /);
    t.send('RSET');
    await t.expect(/^250 /);
    await h.app.admin.appPasswords.revoke(CLI_ACTOR, view.id);
    t.send('MAIL FROM:<scanner@example.com>');
    await t.expect(/^530 5\.7\.0 /);
    await t.waitClosed();
  });

  it('a login the upstream refuses fails at AUTH and is audited as upstream-rejected', async () => {
    const { password } = await h.app.admin.appPasswords.create(CLI_ACTOR, { username: 'noauth@example.com', name: 'Printer' });
    h.upstream.refuseLogins = { code: 535, text: '5.7.139 Authentication unsuccessful, SmtpClientAuthentication is disabled for the Mailbox.' };
    try {
      await assert.rejects(transport('submission', { user: 'noauth@example.com', pass: password }).sendMail({ envelope: { from: 'noauth@example.com', to: ['x@example.org'] }, raw: message('refused') }), {
        responseCode: 535,
      });
    } finally {
      h.upstream.refuseLogins = null;
    }
    const [entry] = await h.app.audit.query({ username: 'noauth@example.com', limit: 1 });
    assert.equal(entry!.reason, 'upstream-rejected');
    assert.match(entry!.detail!, /5\.7\.139/);
  });
});
