/**
 * An upstream that does not offer PIPELINING (RFC 2920): passgate still answers MAIL at once, but sends the first
 * RCPT only after the upstream has answered the MAIL, and gives a refusal of MAIL at that RCPT.
 */
import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import { startSmtpHarness, type SmtpHarness } from '../helpers/smtp-harness.js';
import { SmtpTranscript } from '../helpers/smtp-transcript.js';

describe('SMTP relay to an upstream without PIPELINING', () => {
  let h: SmtpHarness;
  before(async () => {
    h = await startSmtpHarness({ upstreamServer: { hidePipelining: true } });
  });
  after(async () => h.close());

  const loggedIn = () => SmtpTranscript.loggedIn(h.ports.submissions!, h.user, h.password);

  it('relays a message, one command at a time', async () => {
    const before = h.upstream.deliveries.length;
    const t = await loggedIn();
    try {
      for (const [line, code] of [['MAIL FROM:<scanner@example.com>', '250'], ['RCPT TO:<a@example.org>', '250'], ['RCPT TO:<b@example.org>', '250'], ['DATA', '354']]) {
        t.send(line!);
        await t.expect(new RegExp(`^${code} `));
      }
      t.write('Subject: serial\r\n\r\nhi\r\n.\r\n');
      await t.expect(/^250 2\.6\.0 /);
      assert.equal(h.upstream.deliveries.length, before + 1);
      assert.deepEqual(h.upstream.deliveries.at(-1)!.to, ['a@example.org', 'b@example.org']);
    } finally {
      t.close();
    }
  });

  it('relays a reset transaction, RSET sent upstream only after the MAIL before it was answered', async () => {
    const before = h.upstream.deliveries.length;
    const t = await loggedIn();
    try {
      // MAIL, then at once RSET and a new MAIL (the first MAIL's upstream reply may still be on its way).
      t.write('MAIL FROM:<scanner@example.com>\r\nRSET\r\nMAIL FROM:<scanner@example.com>\r\n');
      for (const code of ['250', '250', '250']) await t.expect(new RegExp(`^${code} `));
      for (const [line, code] of [['RCPT TO:<c@example.org>', '250'], ['DATA', '354']]) {
        t.send(line!);
        await t.expect(new RegExp(`^${code} `));
      }
      t.write('Subject: after RSET\r\n\r\nhi\r\n.\r\n');
      await t.expect(/^250 2\.6\.0 /);
      assert.equal(h.upstream.deliveries.length, before + 1);
      assert.deepEqual(h.upstream.deliveries.at(-1)!.to, ['c@example.org']);
    } finally {
      t.close();
    }
  });

  it('gives the upstream\'s refusal of MAIL at the first RCPT', async () => {
    h.upstream.refuseSenders.set('scanner@example.com', { code: 550, text: 'SendAsDenied; not allowed to send as this sender' });
    const t = await loggedIn();
    try {
      t.send('MAIL FROM:<scanner@example.com>');
      await t.expect(/^250 /);
      t.send('RCPT TO:<a@example.org>');
      await t.expect(/^550 5\.1\.1 SendAsDenied; not allowed to send as this sender\r\n$/);
    } finally {
      h.upstream.refuseSenders.clear();
      t.close();
    }
  });
});
