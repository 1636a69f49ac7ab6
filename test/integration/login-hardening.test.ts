import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import { startImapHarness, type ImapHarness } from '../helpers/imap-harness.js';
import { ImapTranscript } from '../helpers/imap-transcript.js';
import { startSmtpHarness, type SmtpHarness } from '../helpers/smtp-harness.js';
import { plain, SmtpTranscript } from '../helpers/smtp-transcript.js';

// RFC 4616 §2: an authorization identity other than the login's own is refused (no acting for another user).
// RFC 3207 §4.2 (SMTP) and RFC 3501 §6.2.1 / RFC 2595 §3.1 (IMAP): whatever a client sends after STARTTLS in the
// same plaintext flight is dropped, never read as a command after the handshake (an on-path attacker could have
// put it there: the STARTTLS command injection class, CVE-2011-0411). docs/security.md promises it (issue 21).

describe('commands pipelined after STARTTLS are dropped: SMTP', () => {
  let h: SmtpHarness;
  before(async () => {
    h = await startSmtpHarness();
  });
  after(async () => h.close());

  it('a login pipelined behind STARTTLS is never answered; the session starts clean over TLS', async () => {
    const t = await SmtpTranscript.connect(h.ports.submission!);
    await t.expect(/^220 /);
    t.send('EHLO client.test');
    await t.expect(/^250 /m);
    t.send(`STARTTLS\r\nAUTH PLAIN ${plain(h.user, h.password)}`);
    await t.expect(/^220 /);
    await t.upgrade();
    t.send('NOOP');
    await t.expect(/^250 /); // the first reply over TLS answers NOOP: the pipelined AUTH got no 235 (nor any reply)
    t.send('MAIL FROM:<scanner@example.com>');
    await t.expect(/^5\d\d /); // not logged in: the injected AUTH did nothing
    t.send('QUIT');
    assert.equal(h.upstream.logins, 0, 'no upstream session was opened for the injected login');
  });
});

describe('IMAP: commands pipelined after STARTTLS are dropped, no acting for another identity', () => {
  let h: ImapHarness;
  before(async () => {
    h = await startImapHarness();
  });
  after(async () => h.close());

  it('a LOGIN pipelined behind STARTTLS is never answered; the session starts clean over TLS', async () => {
    const t = await ImapTranscript.connect(h.ports.imap!);
    await t.until(/^\* OK/);
    t.send(`s STARTTLS\r\nb LOGIN ${h.user} ${h.password}`);
    await t.until(/^s OK/);
    await t.upgrade();
    t.send('c NOOP');
    const seen = await t.until(/^c OK/);
    assert.doesNotMatch(seen, /^b /m, 'the pipelined LOGIN got no answer');
    t.send('d SELECT INBOX');
    await t.until(/^d (BAD|NO)/); // not logged in
    t.send('e LOGOUT');
  });

  const b64 = (text: string) => Buffer.from(text).toString('base64');

  it('refuses a right password with an authorization identity other than its own, and accepts the same one given twice', async () => {
    const t = await ImapTranscript.connect(h.ports.imaps!, { tls: true });
    await t.until(/^\* OK/);
    t.send(`a AUTHENTICATE PLAIN ${b64(`boss@example.com\0${h.user}\0${h.password}`)}`);
    await t.until(/^a NO /);
    t.send(`b AUTHENTICATE PLAIN ${b64(`${h.user}\0${h.user}\0${h.password}`)}`);
    await t.until(/^b OK/);
    t.send('c LOGOUT');
    await t.until(/^c OK/);
  });
});
