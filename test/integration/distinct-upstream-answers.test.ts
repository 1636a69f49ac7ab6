import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import { startImapHarness, type ImapHarness } from '../helpers/imap-harness.js';
import { ImapTranscript } from '../helpers/imap-transcript.js';
import { TestOAuthServer } from '../helpers/oauth-server.js';
import { startSmtpHarness, type SmtpHarness } from '../helpers/smtp-harness.js';
import { SmtpTranscript } from '../helpers/smtp-transcript.js';
import { CLI_ACTOR } from '../../src/core/actor.js';
import { createLogger } from '../../src/observability/logger.js';

// Issue 18, "Different problems, different answers": after a right app password, a token that cannot be had, an
// upstream that cannot be reached and a mailbox the upstream refuses each give the device its own reply, and none
// reads like a wrong password. A wrong password that cannot be an app password is logged as an account password.

async function smtpAuth(port: number, user: string, password: string): Promise<string> {
  return (await SmtpTranscript.authReply(port, user, password)).trim();
}

async function imapLogin(port: number, user: string, password: string): Promise<string> {
  const t = await ImapTranscript.connect(port, { tls: true });
  try {
    await t.until(/^\* OK/);
    t.send(`a LOGIN ${user} ${password}`);
    return (await t.until(/^a (OK|NO|BAD)/)).trim().split('\r\n').pop()!;
  } finally {
    t.close();
  }
}

/** The replies each test sees on the wire; all different (checked on their own, so each test stands alone). */
const SMTP_EXPECTED = {
  'token-unavailable': '454 4.7.0 Temporary authentication failure upstream: no access token for the mailbox, try again later',
  'login-refused': '535 5.7.0 Mailbox refused by the upstream mail service, ask your administrator',
  'login-deferred': '454 4.7.0 Upstream mail server could not check the login now, try again later',
  'wrong password': '535 5.7.8 Authentication credentials invalid',
  unreachable: '451 4.4.1 Upstream mail server unreachable, try again later',
};
const IMAP_EXPECTED = {
  'token-unavailable': 'a NO [UNAVAILABLE] No access token for the mailbox now, try again later.',
  'login-refused': 'a NO [AUTHORIZATIONFAILED] Mailbox refused by the upstream mail service, ask your administrator.',
  'wrong password': 'a NO [AUTHENTICATIONFAILED] Authentication failed.',
  unreachable: 'a NO [UNAVAILABLE] Upstream mail server unreachable, try again later.',
};

describe('SMTP: each upstream problem at AUTH has its own reply', () => {
  let h: SmtpHarness;
  const logs: string[] = [];
  before(async () => {
    h = await startSmtpHarness({ logger: createLogger('info', { write: (line: string) => void logs.push(line) }) });
  });
  after(async () => {
    await h.close();
  });

  it('token endpoint failing: 454 4.7.0, naming the access token', async () => {
    // A fresh passgate of its own: a failed token request backs off, and the harness's must keep working.
    const fresh = await startSmtpHarness();
    try {
      fresh.oauth.failNext(5, TestOAuthServer.oauthError(401, 'invalid_client', 'AADSTS7000215: Invalid client secret provided.'));
      const reply = await smtpAuth(fresh.ports.submissions!, fresh.user, fresh.password);
      assert.equal(reply, SMTP_EXPECTED['token-unavailable']);
      const [entry] = await fresh.app.audit.query({ username: fresh.user, limit: 1 });
      assert.equal(entry!.reason, 'upstream-token-failed');
    } finally {
      await fresh.close();
    }
  });

  it('mailbox refused upstream (535 to XOAUTH2): 535 5.7.0, not the 5.7.8 of a wrong password', async () => {
    const { password } = await h.app.admin.appPasswords.create(CLI_ACTOR, { username: 'noauth@example.com', name: 'Printer' });
    h.upstream.refuseLogins = { code: 535, text: '5.7.139 Authentication unsuccessful, SmtpClientAuthentication is disabled for the Mailbox.' };
    try {
      const reply = await smtpAuth(h.ports.submissions!, 'noauth@example.com', password);
      assert.equal(reply, SMTP_EXPECTED['login-refused']);
    } finally {
      h.upstream.refuseLogins = null;
    }
    const [entry] = await h.app.audit.query({ username: 'noauth@example.com', limit: 1 });
    assert.equal(entry!.reason, 'upstream-rejected');
  });

  it('upstream deferring the login (454 to XOAUTH2): 454 4.7.0 with its own text', async () => {
    const { password } = await h.app.admin.appPasswords.create(CLI_ACTOR, { username: 'deferred@example.com', name: 'Printer' });
    h.upstream.refuseLogins = { code: 454, text: '4.7.0 Temporary authentication failure' };
    try {
      const reply = await smtpAuth(h.ports.submissions!, 'deferred@example.com', password);
      assert.equal(reply, SMTP_EXPECTED['login-deferred']);
    } finally {
      h.upstream.refuseLogins = null;
    }
  });

  it('a wrong password: 535 5.7.8; one that cannot be an app password is logged as an account password', async () => {
    const wrong = await smtpAuth(h.ports.submissions!, h.user, 'abcd-efgh-ijkl-mnop');
    assert.equal(wrong, SMTP_EXPECTED['wrong password']);
    const account = await smtpAuth(h.ports.submissions!, h.user, 'Winter2026!');
    assert.equal(account, wrong, 'the device is told nothing more');
    const refused = logs.map((l) => JSON.parse(l) as Record<string, unknown>).filter((l) => l.msg === 'login refused' && l.username === h.user);
    assert.deepEqual(refused.map((l) => l.looksLike), ['app-password', 'account-password']);
    assert.ok(!logs.some((l) => l.includes('Winter2026!') || l.includes('abcd-efgh')), 'no typed password in the log');
    const [entry] = await h.app.audit.query({ username: h.user, limit: 1 });
    assert.match(entry!.detail ?? '', /looks like an account password/);
  });

  it('upstream unreachable: 451 4.4.1', async () => {
    // A passgate of its own: the upstream goes away for good.
    const gone = await startSmtpHarness();
    try {
      await gone.upstream.crash();
      const reply = await smtpAuth(gone.ports.submissions!, gone.user, gone.password);
      assert.equal(reply, SMTP_EXPECTED.unreachable);
      const [entry] = await gone.app.audit.query({ username: gone.user, limit: 1 });
      assert.equal(entry!.reason, 'unavailable');
    } finally {
      await gone.close();
    }
  });

  it('every reply differs from every other (the replies the tests above see on the wire)', () => {
    assert.equal(new Set(Object.values(SMTP_EXPECTED)).size, Object.keys(SMTP_EXPECTED).length, Object.values(SMTP_EXPECTED).join('\n'));
  });
});

describe('IMAP: each upstream problem at LOGIN has its own reply (RFC 5530 codes)', () => {
  let h: ImapHarness;
  before(async () => {
    h = await startImapHarness();
  });
  after(async () => {
    await h.close();
  });

  it('token endpoint failing: NO [UNAVAILABLE] naming the access token', async () => {
    // A fresh passgate of its own: a failed token request backs off, and the harness's must keep working.
    const fresh = await startImapHarness();
    try {
      fresh.oauth.failNext(5, TestOAuthServer.oauthError(401, 'invalid_client', 'AADSTS7000215: Invalid client secret provided.'));
      const reply = await imapLogin(fresh.ports.imaps!, fresh.user, fresh.password);
      assert.equal(reply, IMAP_EXPECTED['token-unavailable']);
      const [entry] = await fresh.app.audit.query({ username: fresh.user, limit: 1 });
      assert.equal(entry!.reason, 'upstream-token-failed');
    } finally {
      await fresh.close();
    }
  });

  it('mailbox refused by Dovecot: NO [AUTHORIZATIONFAILED], not the AUTHENTICATIONFAILED of a wrong password', async () => {
    const { password } = await h.app.admin.appPasswords.create(CLI_ACTOR, { username: 'other@example.com', name: 'Tablet' });
    await h.directToken();
    // The provider forgets its tokens: passgate's cached one is refused, dropped, and a fresh one works...
    h.oauth.forgetAccessTokens();
    assert.match(await imapLogin(h.ports.imaps!, 'other@example.com', password), /^a OK/);
    // ...and within the forced-refresh window a second refusal is the upstream's verdict on the mailbox.
    h.oauth.forgetAccessTokens();
    const reply = await imapLogin(h.ports.imaps!, 'other@example.com', password);
    assert.equal(reply, IMAP_EXPECTED['login-refused']);
    const [entry] = await h.app.audit.query({ username: 'other@example.com', limit: 1 });
    assert.equal(entry!.reason, 'upstream-rejected');
  });

  it('a wrong password: NO [AUTHENTICATIONFAILED]', async () => {
    const reply = await imapLogin(h.ports.imaps!, h.user, 'abcd-efgh-ijkl-mnop');
    assert.equal(reply, IMAP_EXPECTED['wrong password']);
  });

  it('Dovecot gone: NO [UNAVAILABLE] naming the unreachable upstream', async () => {
    // A passgate of its own: its Dovecot goes away for good.
    const gone = await startImapHarness();
    try {
      await gone.dovecot.stop();
      const reply = await imapLogin(gone.ports.imaps!, gone.user, gone.password);
      assert.equal(reply, IMAP_EXPECTED.unreachable);
      const [entry] = await gone.app.audit.query({ username: gone.user, limit: 1 });
      assert.equal(entry!.reason, 'unavailable');
    } finally {
      await gone.close();
    }
  });

  it('every reply differs from every other (the replies the tests above see on the wire)', () => {
    assert.equal(new Set(Object.values(IMAP_EXPECTED)).size, Object.keys(IMAP_EXPECTED).length, Object.values(IMAP_EXPECTED).join('\n'));
  });
});
