import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import nodemailer from 'nodemailer';
import { startSmtpHarness, type SmtpHarness } from '../helpers/smtp-harness.js';
import { SmtpTranscript } from '../helpers/smtp-transcript.js';
import { waitForPoolWaiting } from '../helpers/pool-waiting.js';

/** Clients that give up at the worst moments must not cost the mailbox its upstream sessions. */
describe('SMTP upstream pool when clients disconnect mid-flight (one upstream session per mailbox)', () => {
  let h: SmtpHarness;
  before(async () => {
    h = await startSmtpHarness({ upstream: { max_connections_per_mailbox: 1, wait_seconds: 5 } });
  });
  after(async () => h.close());

  const loggedIn = () => SmtpTranscript.loggedIn(h.ports.submissions!, h.user, h.password);

  const sendOne = (id: string) =>
    nodemailer
      .createTransport({ host: '127.0.0.1', port: h.ports.submissions, secure: true, auth: { user: h.user, pass: h.password }, tls: { rejectUnauthorized: false } })
      .sendMail({ envelope: { from: h.user, to: ['boss@example.org'] }, raw: Buffer.from(`Subject: ${id}\r\n\r\nhi\r\n`) });

  it('a client that leaves while waiting for the only slot does not keep it', async () => {
    // Both log in first: with one slot, AUTH (which proves the mailbox upstream) also needs it for a moment.
    const waiter = await loggedIn();
    const holder = await loggedIn();
    holder.send('MAIL FROM:<scanner@example.com>');
    await holder.expect(/^250 /);
    waiter.send('MAIL FROM:<scanner@example.com>');
    await waitForPoolWaiting(h.services.ops!.port, 1); // its MAIL waits for the only slot
    waiter.close(); // gives up while waiting
    holder.send('QUIT');
    holder.close();
    // The next message needs the slot within wait_seconds (5 s): a slot the waiter kept would time it out.
    const info = await sendOne('after-waiter-left');
    assert.match(info.response, /^250 /);
  });

  it('a client that leaves with MAIL outstanding upstream does not leave a poisoned session in the pool', async () => {
    h.upstream.mailDelayMs = 500;
    try {
      const leaver = await loggedIn();
      const mails = h.upstream.mails;
      leaver.send('MAIL FROM:<scanner@example.com>');
      while (h.upstream.mails === mails) await new Promise((r) => setImmediate(r)); // the upstream has the MAIL
      leaver.close(); // the upstream's reply to MAIL is still on its way (held 500 ms)
    } finally {
      h.upstream.mailDelayMs = 0;
    }
    for (let i = 0; i < 3; i++) assert.match((await sendOne(`after-leaver-${i}`)).response, /^250 /);
  });
});
