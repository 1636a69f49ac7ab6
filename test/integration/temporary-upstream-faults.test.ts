import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import { startImapHarness, type ImapHarness } from '../helpers/imap-harness.js';
import { ImapTranscript } from '../helpers/imap-transcript.js';
import { startSmtpHarness, type SmtpHarness } from '../helpers/smtp-harness.js';
import { SmtpTranscript } from '../helpers/smtp-transcript.js';
import { CLI_ACTOR } from '../../src/core/actor.js';

// Found by the chaos run (docs/chaos.md): while the OAuth provider was down, the upstream could not check
// passgate's (still valid, cached) token and said so with a temporary answer, which passgate turned into "wrong
// password" — a device that believes that stops trying, or asks its user for a new password.

describe('an upstream that cannot check the token right now gets the client a temporary answer', () => {
  describe('IMAP: Dovecot answers NO [UNAVAILABLE] while its introspection endpoint is down', () => {
    let h: ImapHarness;
    before(async () => {
      h = await startImapHarness();
    });
    after(async () => h.close());

    it('passgate answers NO [UNAVAILABLE], audits "unavailable", and logs in again once the provider is back', async () => {
      await h.directToken(); // passgate holds a valid token: only the upstream's check can fail
      const port = h.oauth.port;
      await h.oauth.stop();
      try {
        const t = await ImapTranscript.connect(h.ports.imaps!, { tls: true });
        await t.until(/^\* OK/);
        t.send(`a LOGIN ${h.user} ${h.password}`);
        const answer = await t.until(/^a (OK|NO|BAD)/);
        assert.match(answer, /^a NO \[UNAVAILABLE\]/m);
        t.close();
        const [entry] = await h.app.audit.query({ username: h.user, limit: 1 });
        assert.equal(entry!.reason, 'unavailable');
      } finally {
        await h.oauth.start(port);
      }
      const t = await ImapTranscript.connect(h.ports.imaps!, { tls: true });
      await t.until(/^\* OK/);
      t.send(`a LOGIN ${h.user} ${h.password}`);
      await t.until(/^a OK/);
      t.send('b LOGOUT');
      await t.until(/^b OK/);
      t.close();
    });
  });

  describe('SMTP: the upstream answers 454 4.7.0 to AUTH while its introspection endpoint is down', () => {
    let h: SmtpHarness;
    before(async () => {
      h = await startSmtpHarness();
    });
    after(async () => h.close());

    const auth = async (user: string, password: string) => {
      return SmtpTranscript.authReply(h.ports.submissions!, user, password);
    };

    it('passgate answers 454 (not 535), audits "unavailable", and works again once the provider is back', async () => {
      // A mailbox with no pooled upstream session, so AUTH opens a new one and the upstream checks the token.
      const user = 'fresh@example.com';
      const { password } = await h.app.admin.appPasswords.create(CLI_ACTOR, { username: user, name: 'Scanner' });
      await h.app.oauth!.tokens.getAccessToken(user);
      const port = h.oauth.port;
      await h.oauth.stop();
      try {
        assert.match(await auth(user, password), /^454 4\.7\.0 /);
        const [entry] = await h.app.audit.query({ username: user, limit: 1 });
        assert.equal(entry!.reason, 'unavailable');
        assert.match(entry!.detail!, /454/);
      } finally {
        await h.oauth.start(port);
      }
      assert.match(await auth(user, password), /^235 /);
    });

    it('a 535 from the upstream is a refusal (535), told apart from a wrong password (5.7.0, issue 18)', async () => {
      const user = 'refused@example.com';
      const { password } = await h.app.admin.appPasswords.create(CLI_ACTOR, { username: user, name: 'Printer' });
      h.upstream.refuseLogins = { code: 535, text: '5.7.3 Authentication unsuccessful' };
      try {
        assert.match(await auth(user, password), /^535 5\.7\.0 Mailbox refused by the upstream/);
      } finally {
        h.upstream.refuseLogins = null;
      }
    });
  });
});
