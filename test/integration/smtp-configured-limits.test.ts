import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import { startSmtpHarness, type SmtpHarness } from '../helpers/smtp-harness.js';
import { plain, SmtpTranscript } from '../helpers/smtp-transcript.js';
import { waitForPoolWaiting } from '../helpers/pool-waiting.js';

// Promises of the config reference (issue 21), each over real sockets: smtp.max_recipients, smtp.max_message_bytes
// (declared and undeclared), and auth.failure_delay_ms as the time a client waits for the reply to a wrong password.
const FAILURE_DELAY_MS = 700;

describe('configured SMTP limits, as a client sees them', () => {
  let h: SmtpHarness;
  before(async () => {
    h = await startSmtpHarness({
      smtp: { max_recipients: 3, max_message_bytes: 4096 },
      config: { auth: { failure_delay_ms: FAILURE_DELAY_MS, failure_delay_jitter_ms: 0 } },
    });
  });
  after(async () => h.close());

  it('smtp.max_recipients: the fourth RCPT gets 452 and the upstream receives three', async () => {
    const t = await SmtpTranscript.loggedIn(h.ports.submissions!, h.user, h.password);
    t.send('MAIL FROM:<scanner@example.com>');
    await t.expect(/^250 /);
    for (const n of [1, 2, 3]) {
      t.send(`RCPT TO:<r${n}@example.org>`);
      await t.expect(/^250 /);
    }
    t.send('RCPT TO:<r4@example.org>');
    await t.expect(/^452 .*too many recipients/i);
    t.send('DATA');
    await t.expect(/^354 /);
    t.send('Subject: limits\r\n\r\nbody\r\n.');
    await t.expect(/^250 /);
    t.send('QUIT');
    const delivery = h.upstream.deliveries.at(-1)!;
    assert.deepEqual(delivery.to, ['r1@example.org', 'r2@example.org', 'r3@example.org']);
  });

  it('smtp.max_message_bytes: advertised in EHLO, a larger declared SIZE is refused, a larger body is refused and not delivered', async () => {
    const t = await SmtpTranscript.connect(h.ports.submissions!, { tls: true });
    await t.expect(/^220 /);
    t.send('EHLO client.test');
    assert.match(await t.expect(/^250 /m), /^250[- ]SIZE 4096\r$/m);
    t.send(`AUTH PLAIN ${plain(h.user, h.password)}`);
    await t.expect(/^235 /);
    t.send('MAIL FROM:<scanner@example.com> SIZE=5000');
    await t.expect(/^552 /);

    const before = h.upstream.deliveries.length;
    t.send('MAIL FROM:<scanner@example.com>');
    await t.expect(/^250 /);
    t.send('RCPT TO:<big@example.org>');
    await t.expect(/^250 /);
    t.send('DATA');
    await t.expect(/^354 /);
    t.send(`Subject: too big\r\n\r\n${'x'.repeat(70)}\r\n`.repeat(80) + '.');
    await t.expect(/^552 /);
    t.send('QUIT');
    assert.equal(h.upstream.deliveries.length, before, 'nothing delivered upstream');
  });

  it('auth.failure_delay_ms: the reply to a wrong password comes no sooner than the delay', async () => {
    const t = await SmtpTranscript.connect(h.ports.submissions!, { tls: true });
    await t.expect(/^220 /);
    t.send('EHLO client.test');
    await t.expect(/^250 /m);
    const started = performance.now();
    t.send(`AUTH PLAIN ${plain(h.user, 'not-the-password')}`);
    await t.expect(/^535 /);
    const wrongMs = performance.now() - started;
    assert.ok(wrongMs >= FAILURE_DELAY_MS, `a wrong password was answered after ${wrongMs.toFixed(0)} ms, before the ${FAILURE_DELAY_MS} ms delay`);
    t.send('QUIT');
  });

  it('smtp.upstream.max_connections_per_mailbox defaults to 3: a fourth transaction waits for a session to come free', async () => {
    const clients: SmtpTranscript[] = [];
    for (let i = 0; i < 4; i++) clients.push(await SmtpTranscript.loggedIn(h.ports.submissions!, h.user, h.password));
    const [a, b, c, d] = clients as [SmtpTranscript, SmtpTranscript, SmtpTranscript, SmtpTranscript];
    for (const t of [a, b, c]) t.send('MAIL FROM:<scanner@example.com>');
    for (const t of [a, b, c]) await t.expect(/^250 /);
    d.send('MAIL FROM:<scanner@example.com>');
    await waitForPoolWaiting(h.services.ops!.port, 1); // the pool says the fourth client waits for its mailbox's sessions
    assert.equal(d.pending(), '', 'the fourth MAIL is not answered while three sessions are busy');
    a.send('QUIT'); // its upstream session is closed (a transaction was open), and the fourth transaction gets a slot
    await a.expect(/^221 /);
    await d.expect(/^250 /);
    assert.equal(h.upstream.peakLoggedIn, 3, 'never more than three upstream sessions for the mailbox');
    for (const t of [b, c, d]) t.send('QUIT');
    await Promise.all([b, c, d].map((t) => t.expect(/^221 /)));
  });
});
