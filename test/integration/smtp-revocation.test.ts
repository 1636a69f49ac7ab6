import { CLI_ACTOR } from '../../src/core/actor.js';
import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import { startSmtpHarness, type SmtpHarness } from '../helpers/smtp-harness.js';
import { SmtpTranscript } from '../helpers/smtp-transcript.js';

/**
 * Issue 17: revocation is immediate on SMTP as it is on IMAP. A stolen device's open connections (logged in before
 * the revocation, some with MAIL already accepted) deliver nothing after it: the upstream transaction is abandoned
 * before its final "." and the client hears 421. Real passgate, real upstream, real sockets.
 */
describe('SMTP sessions of a revoked app password', () => {
  let h: SmtpHarness;
  before(async () => {
    // revocation_check_seconds 60: the tests drive the registry's round themselves, so nothing depends on timing.
    h = await startSmtpHarness({ config: { imap: { enabled: false, revocation_check_seconds: 60 } } });
  });
  after(async () => h.close());

  async function fresh(): Promise<{ id: string; password: string }> {
    const { password, view } = await h.app.admin.appPasswords.create(CLI_ACTOR, { username: h.user, name: `device ${Math.random()}` });
    return { id: view.id, password };
  }

  async function inTransaction(password: string): Promise<SmtpTranscript> {
    const t = await SmtpTranscript.loggedIn(h.ports.submissions!, h.user, password);
    t.send('MAIL FROM:<scanner@example.com>');
    await t.expect(/^250 /);
    t.send('RCPT TO:<boss@example.org>');
    await t.expect(/^250 /);
    return t;
  }

  it('a transaction whose MAIL was accepted before the revocation is not delivered (DATA after revoke)', async () => {
    const { id, password } = await fresh();
    const t = await inTransaction(password);
    await h.app.admin.appPasswords.revoke(CLI_ACTOR, id);
    const before = h.upstream.deliveries.length;
    t.send('DATA');
    const reply = await t.expect(/^(354|421|5\d\d) /);
    if (reply.startsWith('354')) {
      t.write('Subject: after revoke\r\n\r\nshould not arrive\r\n.\r\n');
      await t.expect(/^421 4\.7\.0 Authentication no longer valid, message not relayed/);
    }
    await t.waitClosed();
    assert.equal(h.upstream.deliveries.length, before, 'nothing delivered upstream');
  });

  it('a message streaming when the revocation is heard is abandoned before its final "." and answered 421 after the client\'s', async () => {
    const { id, password } = await fresh();
    const t = await inTransaction(password);
    t.send('DATA');
    await t.expect(/^354 /);
    t.write('Subject: half\r\n\r\nfirst part\r\n');
    await h.app.store.revoke(id, Date.now());
    await h.services.registry.sweep();
    const before = h.upstream.deliveries.length;
    t.write('second part\r\n.\r\n');
    await t.expect(/^421 4\.7\.0 Authentication no longer valid, message not relayed/);
    await t.waitClosed();
    assert.equal(h.upstream.deliveries.length, before, 'nothing delivered upstream');
  });

  it('idle connections, with or without a transaction, are told 421 and closed by the registry round', async () => {
    const { id, password } = await fresh();
    const idle = await SmtpTranscript.loggedIn(h.ports.submissions!, h.user, password);
    const open = await inTransaction(password);
    const other = await fresh();
    const unaffected = await SmtpTranscript.loggedIn(h.ports.submissions!, h.user, other.password);
    await h.app.admin.appPasswords.revoke(CLI_ACTOR, id);
    await h.services.registry.sweep();
    await idle.expect(/^421 4\.7\.0 Authentication no longer valid, closing connection/);
    await open.expect(/^421 4\.7\.0 Authentication no longer valid, closing connection/);
    await Promise.all([idle.waitClosed(), open.waitClosed()]);
    unaffected.send('NOOP');
    await unaffected.expect(/^250 /);
    unaffected.close();
  });

  it('revoke-all ends every session of the user', async () => {
    const a = await fresh();
    const b = await fresh();
    const ta = await SmtpTranscript.loggedIn(h.ports.submissions!, h.user, a.password);
    const tb = await inTransaction(b.password);
    await h.app.admin.appPasswords.revokeAll(CLI_ACTOR, h.user);
    await h.services.registry.sweep();
    await ta.expect(/^421 /);
    await tb.expect(/^421 /);
  });
});
