import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import type { App } from '../../src/app.js';
import { createLogger } from '../../src/observability/logger.js';
import { startImapHarness, type ImapHarness } from '../helpers/imap-harness.js';
import { ImapTranscript } from '../helpers/imap-transcript.js';
import { startSmtpHarness, type SmtpHarness } from '../helpers/smtp-harness.js';
import { SmtpTranscript } from '../helpers/smtp-transcript.js';
import { CLI_ACTOR } from '../../src/core/actor.js';

// Found by review: a token revoked early at the provider (or whose permissions changed) stayed in passgate's cache,
// and every login was refused until it expired (60-90 minutes). A refusal of a cached token now drops it and
// retries once with a fresh one; a permanently refusing upstream costs one extra token request per key and window.

async function invalidations(app: App, reason: string): Promise<number> {
  const metric = await app.metrics.tokenInvalidations.get();
  return metric.values.find((v) => v.labels.reason === reason)?.value ?? 0;
}

/** Log lines about refused cached tokens, checked to carry no token issued by the test server. */
function refusalLines(logs: string[], issued: string[]): string[] {
  const lines = logs.filter((l) => l.includes('cached access token'));
  for (const line of lines) for (const token of issued) assert.ok(!line.includes(token), 'a token was logged');
  return lines;
}

describe('a cached token the upstream refuses is dropped and the login retried once with a fresh one', () => {
  describe('SMTP (real upstream checking tokens at the real OAuth server)', () => {
    let h: SmtpHarness;
    const logs: string[] = [];
    before(async () => {
      h = await startSmtpHarness({ logger: createLogger('info', { write: (line: string) => void logs.push(line) }) });
    });
    after(async () => h.close());

    let serial = 0;
    /** AUTH as a new mailbox each time: a mailbox with no pooled upstream session makes passgate log in upstream. */
    const authNewMailbox = async () => {
      const user = `device${++serial}@example.com`;
      const { password } = await h.app.admin.appPasswords.create(CLI_ACTOR, { username: user, name: `Device ${serial}` });
      return SmtpTranscript.authReply(h.ports.submissions!, user, password);
    };

    it('after the provider revoked the cached token, the next login succeeds with one new token request', async () => {
      assert.match(await authNewMailbox(), /^235 /);
      const requests = h.oauth.counts.token;
      h.oauth.forgetAccessTokens(); // introspection answers inactive for the cached token, like a revocation
      assert.match(await authNewMailbox(), /^235 /);
      assert.equal(h.oauth.counts.token, requests + 1, 'one fresh token');
      assert.match(await authNewMailbox(), /^235 /);
      assert.equal(h.oauth.counts.token, requests + 1, 'the fresh token is cached again');
      assert.equal(await invalidations(h.app, 'smtp-refused'), 1);
      assert.equal(refusalLines(logs, h.oauth.issuedAccessTokens()).length, 1);
    });

    it('a permanently refusing upstream still yields 535, with no more than one forced refresh in the window', async () => {
      // A passgate of its own (each test stands alone): a refresh forced moments ago, then an upstream refusing all.
      const own = await startSmtpHarness();
      try {
        let n = 0;
        const auth = async () => {
          const user = `refused${++n}@example.com`;
          const { password } = await own.app.admin.appPasswords.create(CLI_ACTOR, { username: user, name: `Device ${n}` });
          return SmtpTranscript.authReply(own.ports.submissions!, user, password);
        };
        assert.match(await auth(), /^235 /);
        own.oauth.forgetAccessTokens();
        assert.match(await auth(), /^235 /, 'the cached token refused: one forced refresh');
        const requests = own.oauth.counts.token;
        own.upstream.refuseLogins = { code: 535, text: '5.7.3 Authentication unsuccessful' };
        for (let i = 0; i < 5; i++) assert.match(await auth(), /^535 5\.7\.0 /);
        assert.equal(own.oauth.counts.token, requests, 'no token request: the key was force-refreshed within the window');
        assert.equal(await invalidations(own.app, 'smtp-refused'), 1);
      } finally {
        await own.close();
      }
    });
  });

  describe('SMTP: an upstream that starts refusing every login', () => {
    let h: SmtpHarness;
    before(async () => {
      h = await startSmtpHarness();
    });
    after(async () => h.close());

    it('costs exactly one extra token request for a burst of logins, each answered 535', async () => {
      const login = async (n: number) => {
        const user = `printer${n}@example.com`;
        const { password } = await h.app.admin.appPasswords.create(CLI_ACTOR, { username: user, name: `Printer ${n}` });
        return SmtpTranscript.authReply(h.ports.submissions!, user, password);
      };
      assert.match(await login(0), /^235 /);
      const requests = h.oauth.counts.token;
      h.upstream.refuseLogins = { code: 535, text: '5.7.3 Authentication unsuccessful' };
      // Sequential, then a concurrent burst: the cached token is refused, one fresh one is fetched and refused too.
      for (let i = 1; i <= 3; i++) assert.match(await login(i), /^535 5\.7\.0 /);
      const burst = await Promise.all(Array.from({ length: 5 }, (_, i) => login(10 + i)));
      for (const reply of burst) assert.match(reply, /^535 5\.7\.0 /);
      assert.equal(h.oauth.counts.token, requests + 1, 'one forced refresh in the window');
      assert.equal(await invalidations(h.app, 'smtp-refused'), 1);
      h.upstream.refuseLogins = null;
      assert.match(await login(99), /^235 /, 'the fresh token works once the upstream accepts again');
    });
  });

  describe('IMAP (real Dovecot checking tokens at the real OAuth server)', () => {
    let h: ImapHarness;
    const logs: string[] = [];
    before(async () => {
      h = await startImapHarness({ logger: createLogger('info', { write: (line: string) => void logs.push(line) }) });
    });
    after(async () => h.close());

    const login = async () => {
      const t = await ImapTranscript.connect(h.ports.imaps!, { tls: true });
      await t.until(/^\* OK/);
      t.send(`a LOGIN ${h.user} ${h.password}`);
      const answer = await t.until(/^a (OK|NO|BAD)/);
      if (/^a OK/m.test(answer)) {
        t.send('b LOGOUT');
        await t.until(/^b OK/);
      }
      t.close();
      return answer;
    };

    it('after the provider revoked the cached token, the next login succeeds with one new token request', async () => {
      assert.match(await login(), /^a OK/m);
      const requests = h.oauth.counts.token;
      h.oauth.forgetAccessTokens();
      assert.match(await login(), /^a OK/m);
      assert.equal(h.oauth.counts.token, requests + 1, 'one fresh token');
      assert.match(await login(), /^a OK/m);
      assert.equal(h.oauth.counts.token, requests + 1, 'the fresh token is cached again');
      assert.equal(await invalidations(h.app, 'imap-refused'), 1);
      assert.equal(refusalLines(logs, h.oauth.issuedAccessTokens()).length, 1);
    });

    it('a token Dovecot keeps refusing is the verdict: NO, and no more token requests in the window', async () => {
      // A passgate of its own (each test stands alone): a refresh forced moments ago, then the provider forgets again.
      const own = await startImapHarness();
      try {
        const ownLogin = async () => {
          const t = await ImapTranscript.connect(own.ports.imaps!, { tls: true });
          await t.until(/^\* OK/);
          t.send(`a LOGIN ${own.user} ${own.password}`);
          const answer = await t.until(/^a (OK|NO|BAD)/);
          t.close();
          return answer;
        };
        assert.match(await ownLogin(), /^a OK/m);
        own.oauth.forgetAccessTokens();
        assert.match(await ownLogin(), /^a OK/m, 'the cached token refused: one forced refresh');
        const requests = own.oauth.counts.token;
        own.oauth.forgetAccessTokens(); // within the window of that forced refresh: not forced again
        for (let i = 0; i < 3; i++) assert.match(await ownLogin(), /^a NO \[AUTHORIZATIONFAILED\]/m);
        assert.equal(own.oauth.counts.token, requests);
        assert.equal(await invalidations(own.app, 'imap-refused'), 1);
      } finally {
        await own.close();
      }
    });
  });
});
