import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import { Redis } from 'ioredis';
import { CLI_ACTOR, type Actor } from '../../src/core/actor.js';
import { RedisCredentialStore } from '../../src/credentials/redis-credential-store.js';
import { RedisRevocationFeed } from '../../src/credentials/redis-revocation-feed.js';
import { startImapHarness, type ImapHarness } from '../helpers/imap-harness.js';
import { ImapTranscript } from '../helpers/imap-transcript.js';
import { makeRecord } from '../helpers/records.js';
import { startRedis } from '../helpers/redis-server.js';
import { startSmtpHarness, type SmtpHarness } from '../helpers/smtp-harness.js';
import { plain, SmtpTranscript } from '../helpers/smtp-transcript.js';

/** A portal user turning their own password off and on: the same path the CLI takes, as another actor. */
const owner = (id: string): Actor => ({ role: 'user', id, mailboxes: [id], ip: '198.51.100.20', userAgent: 'test' });

describe('turning an app password off and on, end to end', () => {
  describe('IMAP (real Dovecot)', () => {
    let h: ImapHarness;
    before(async () => {
      h = await startImapHarness();
    });
    after(async () => h.close());

    const login = async (password: string) => {
      const t = await ImapTranscript.connect(h.ports.imaps!, { tls: true });
      await t.until(/^\* OK/);
      t.send(`a LOGIN ${h.user} ${password}`);
      const reply = await t.until(/^a (OK|NO|BAD)/);
      return { t, reply };
    };

    it('cuts a live session, refuses the login like a wrong password while off, and works again when turned on', async () => {
      const me = owner(h.user);
      const { password, view } = await h.app.admin.appPasswords.create(me, { name: 'Phone' });
      const live = await login(password);
      assert.match(live.reply, /^a OK/);
      live.t.send('b SELECT INBOX');
      await live.t.until(/^b OK/);
      live.t.send('c IDLE');
      await live.t.until(/^\+ idling/i);

      assert.equal((await h.app.admin.appPasswords.turnOff(me, view.id)).changed, true);
      await live.t.until(/^\* BYE /);
      await live.t.waitClosed();

      const wrong = await login('aaaa-bbbb-cccc-dddd');
      const off = await login(password);
      assert.equal(off.reply.replace(/^a /, ''), wrong.reply.replace(/^a /, ''), 'answered exactly like a wrong password');
      assert.match(off.reply, /^a NO \[AUTHENTICATIONFAILED\]/);
      off.t.close();
      wrong.t.close();
      const [entry] = await h.app.audit.query({ username: h.user, limit: 1 });
      assert.deepEqual([entry!.reason, entry!.appPasswordId], ['disabled', view.id]);

      assert.equal((await h.app.admin.appPasswords.turnOn(CLI_ACTOR, view.id)).changed, true);
      const again = await login(password);
      assert.match(again.reply, /^a OK/, 'the same password works again: no re-keying');
      again.t.send('z LOGOUT');
      await again.t.until(/^z OK/);
      again.t.close();
    });
  });

  describe('SMTP (Exchange-like upstream)', () => {
    let h: SmtpHarness;
    before(async () => {
      h = await startSmtpHarness();
    });
    after(async () => h.close());

    const auth = async (password: string) => {
      const t = await SmtpTranscript.connect(h.ports.submissions!, { tls: true });
      await t.expect(/^220 /);
      t.send('EHLO client.test');
      await t.expect(/^250 /m);
      t.send(`AUTH PLAIN ${plain(h.user, password)}`);
      const reply = await t.expect(/^\d{3} /);
      t.close();
      return reply;
    };

    it('refuses AUTH like a wrong password while off, stops a logged-in session sending, and works again when on', async () => {
      const { password, view } = await h.app.admin.appPasswords.create(CLI_ACTOR, { username: h.user, name: 'Copier' });
      const session = await SmtpTranscript.loggedIn(h.ports.submissions!, h.user, password);
      await h.app.admin.appPasswords.turnOff(CLI_ACTOR, view.id);

      session.send(`MAIL FROM:<${h.user}>`);
      assert.match(await session.expect(/^\d{3} /), /^530 5\.7\.0 /, 'a session logged in before sends nothing more');
      session.close();
      const wrong = await auth('aaaa-bbbb-cccc-dddd');
      const off = await auth(password);
      assert.equal(off, wrong);
      assert.match(off, /^535 5\.7\.8 /);

      await h.app.admin.appPasswords.turnOn(CLI_ACTOR, view.id);
      assert.match(await auth(password), /^235 /);
    });
  });

  it('Redis: turning off is announced on the revocation channel, so every instance checks its sessions at once', async () => {
    const server = await startRedis();
    const redis = new Redis(server.url);
    const feed = new RedisRevocationFeed(redis, server.prefix);
    try {
      const store = new RedisCredentialStore(redis, server.prefix);
      const renamed = makeRecord({ username: 'hint@example.com' });
      const record = makeRecord({ username: 'hint@example.com' });
      for (const r of [renamed, record]) await store.insert(r, { maxActivePerUser: 10, now: Date.now() });
      const heard: string[][] = [];
      const arrived = new Promise<void>((resolve) =>
        feed.subscribe((ids) => {
          heard.push(ids);
          resolve();
        }),
      );
      await feed.ready();
      await store.update(renamed.id, { name: 'renamed only' });
      await store.update(record.id, { disabledAt: Date.now() });
      await arrived;
      assert.deepEqual(heard[0], [record.id], 'the first hint is the turning off: a rename says nothing');
    } finally {
      await feed.close();
      redis.disconnect();
      await server.close();
    }
  });
});
