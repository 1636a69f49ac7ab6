import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import { BufferedAuditLog } from '../../src/core/buffered-audit-log.js';
import { waitUntil } from '../helpers/redis-server.js';
import { plain } from '../helpers/smtp-transcript.js';
import { startDeployment, startPeers, type Deployment, type Instance, type Peers } from '../helpers/scale-out-harness.js';
import { CLI_ACTOR } from '../../src/core/actor.js';

/*
 * Many instances, one state: two passgate instances behind a real HAProxy (PROXY protocol v2), sharing one Redis,
 * once on a standalone redis-server and once on a three-master Redis Cluster. Every client connects to HAProxy
 * only, from ::1; HAProxy balances round robin, so consecutive connections alternate between the instances.
 */

const PAIR_MAX_FAILURES = 6;

let peers: Peers;
before(async () => {
  peers = await startPeers();
});
after(async () => peers?.close());

/** Logs in over IMAP through HAProxy; returns the open, logged-in transcript. */
async function imapLogin(d: Deployment, user: string, password: string) {
  const t = await d.imap();
  t.send(`a LOGIN ${user} ${password}`);
  const reply = await t.until(/^a (OK|NO|BAD)/);
  return { t, reply };
}

const sum = (instances: Instance[], count: (i: Instance) => number) => instances.reduce((n, i) => n + count(i), 0);

for (const backend of ['standalone', 'cluster'] as const) {
  describe(`scale-out behind HAProxy on ${backend} Redis`, () => {
    let d: Deployment;
    let a: Instance;
    let b: Instance;
    before(async () => {
      d = await startDeployment(backend, peers, {
        rate_limit: { pair: { max_failures: PAIR_MAX_FAILURES }, ip: { burst_failures: 1000, daily_failures: 1000 } },
        // Polling is the guarantee (imap-gateway.test.ts); here a revocation must arrive by Pub/Sub, well before it.
        imap: { revocation_check_seconds: 30 },
      });
      [a, b] = d.instances;
    });
    after(async () => d?.close());

    it('limits a brute force spread over both instances as one: argon2 runs max_failures times in all', async () => {
      await a.app.admin.appPasswords.create(CLI_ACTOR, { username: 'brute@example.com', name: 'Target' });
      for (const i of d.instances) i.hasher.reset();
      const replies: string[] = [];
      for (let n = 0; n < 2 * PAIR_MAX_FAILURES; n++) {
        const { t, reply } = await imapLogin(d, 'brute@example.com', a.app.format.generate());
        replies.push(reply.trim().split('\r\n').pop()!);
        t.close();
      }
      const verified = d.instances.map((i) => i.hasher.verifications);
      assert.equal(sum(d.instances, (i) => i.hasher.verifications), PAIR_MAX_FAILURES, `verifications per instance: ${verified}`);
      assert.ok(verified.every((n) => n > 0), `both instances served guesses: ${verified}`);
      assert.ok(replies.slice(0, PAIR_MAX_FAILURES).every((r) => r.startsWith('a NO [AUTHENTICATIONFAILED]')), replies.join('\n'));
      assert.ok(replies.slice(PAIR_MAX_FAILURES).every((r) => r.startsWith('a NO [UNAVAILABLE]')), replies.join('\n'));
    });

    it('a password created through one instance works on the other at once', async () => {
      const { password } = await a.app.admin.appPasswords.create(CLI_ACTOR, { username: 'new@example.com', name: 'Laptop' });
      for (const i of d.instances) i.hasher.reset();
      // Two consecutive connections: round robin sends one to each instance, each verifying the password once.
      for (let n = 0; n < 2; n++) {
        const { t, reply } = await imapLogin(d, 'new@example.com', password);
        assert.match(reply, /^a OK/m);
        t.send('z LOGOUT');
        await t.waitClosed();
      }
      assert.deepEqual(
        d.instances.map((i) => i.hasher.verifications),
        [1, 1],
      );
    });

    it('revoke-all on one instance closes a live IMAP session held by the other by Pub/Sub, before the 30 s poll', async () => {
      const { password } = await a.app.admin.appPasswords.create(CLI_ACTOR, { username: 'idle@example.com', name: 'Phone' });
      const { t, reply } = await imapLogin(d, 'idle@example.com', password);
      assert.match(reply, /^a OK/m);
      t.send('b SELECT INBOX');
      await t.until(/^b OK/);
      t.send('c IDLE');
      await t.until(/^\+ /);
      const holder = d.instances.find((i) => i.liveSessions === 1)!;
      const other = holder === a ? b : a;
      assert.equal(other.liveSessions, 0);
      const started = Date.now();
      await other.app.admin.appPasswords.revokeAll(CLI_ACTOR, 'idle@example.com');
      await t.until(/^\* BYE .*revoked/, 20_000);
      await t.waitClosed(5000);
      // The poll runs every 30 s (revocation_check_seconds): closed well before it, the news came by Pub/Sub. On a
      // quiet machine this takes milliseconds; the bound is the poll, not the wall clock (no flake under load).
      const elapsed = Date.now() - started;
      assert.ok(elapsed < 25_000, `closed after ${elapsed} ms: by the poll, not by Pub/Sub`);
    });

    it('a token refresh happens once for both instances', async () => {
      const { oauth } = peers;
      const { password } = await a.app.admin.appPasswords.create(CLI_ACTOR, { username: 'token@example.com', name: 'Tablet' });
      for (const i of d.instances) await i.app.oauth!.tokens.forget('token@example.com');
      // Short-lived tokens (usable for lifetime - refresh_margin_seconds = 4 s) and a slow token endpoint, so the
      // two instances' requests would overlap if both made one.
      oauth.tokenLifetime = 5;
      oauth.delayMs = 300;
      const base = oauth.counts.client_credentials;
      try {
        for (const round of [1, 2]) {
          // Two logins at once: one on each instance (round robin), both needing a token nobody holds.
          const logins = await Promise.all([imapLogin(d, 'token@example.com', password), imapLogin(d, 'token@example.com', password)]);
          for (const { reply } of logins) assert.match(reply, /^a OK/m);
          assert.deepEqual(d.instances.map((i) => i.liveSessions), [1, 1], 'one session on each instance');
          for (const { t } of logins) {
            t.send('z LOGOUT');
            await t.waitClosed();
          }
          assert.equal(oauth.counts.client_credentials - base, round, `token requests after round ${round}`);
          // Past the usable life of the token both instances now hold.
          if (round === 1) await new Promise((r) => setTimeout(r, 4500));
        }
      } finally {
        oauth.tokenLifetime = 3600;
        oauth.delayMs = 0;
      }
    });

    it('the audit log shows the real client address (from the PROXY header), not HAProxy\'s', async () => {
      const { password } = await a.app.admin.appPasswords.create(CLI_ACTOR, { username: 'audit@example.com', name: 'Desktop' });
      const { t, reply } = await imapLogin(d, 'audit@example.com', password);
      assert.match(reply, /^a OK/m);
      t.close();
      const s = await d.smtp();
      s.send('EHLO client.test');
      await s.expect(/^250 /m);
      s.send(`AUTH PLAIN ${plain('audit@example.com', 'not-the-password-at-all')}`);
      await s.expect(/^535 /);
      s.close();
      assert.equal(t.clientIp, '::1');
      // Read through the other instance too: the log is shared.
      const entries = await b.app.audit.query({ username: 'audit@example.com', limit: 10 });
      const byProtocol = Object.fromEntries(entries.filter((e) => e.action === 'login').map((e) => [e.protocol, e]));
      assert.deepEqual([byProtocol.imap?.clientIp, byProtocol.imap?.reason], [t.clientIp, 'ok']);
      assert.deepEqual([byProtocol.smtp?.clientIp, byProtocol.smtp?.reason], [s.clientIp, 'invalid-credentials']);
    });

    it('Redis unreachable: both instances answer logins as temporary, live sessions go on, service returns with Redis', async () => {
      const { password } = await a.app.admin.appPasswords.create(CLI_ACTOR, { username: 'outage@example.com', name: 'Scanner' });
      const live = await imapLogin(d, 'outage@example.com', password);
      assert.match(live.reply, /^a OK/m);
      d.pauseRedis();
      let during: string[];
      const started = Date.now();
      try {
        // Two at once: one on each instance. Each waits for redis.command_timeout_ms (2 s) and answers temporary.
        const logins = await Promise.all([imapLogin(d, 'outage@example.com', password), imapLogin(d, 'outage@example.com', password)]);
        during = logins.map(({ reply, t: c }) => (c.close(), reply.trim().split('\r\n').pop()!));
        live.t.send('b NOOP');
        await live.t.until(/^b OK/);
      } finally {
        d.resumeRedis();
      }
      const elapsed = Date.now() - started;
      assert.deepEqual(during, ['a NO [UNAVAILABLE] Service temporarily unavailable, try again later.', 'a NO [UNAVAILABLE] Service temporarily unavailable, try again later.']);
      assert.ok(elapsed < 15_000, `answered within ${elapsed} ms`);
      for (let n = 0; n < 2; n++) {
        const again = await imapLogin(d, 'outage@example.com', password);
        assert.match(again.reply, /^a OK/m);
        again.t.close();
      }
      live.t.close();
      // Each instance held the sign-in records of the outage and writes them once Redis answers (a frozen Redis
      // sends no reconnect: at the flusher's next retry). The refused logins are there once each: the audit write
      // that timed out ran when Redis woke, and the flusher found it rather than writing it again.
      const held = () => d.instances.reduce((n, i) => n + (i.app.audit as BufferedAuditLog).queued, 0);
      await waitUntil('audit', 'sign-in records held through the outage written', async () => held() === 0, 10_000);
      const records = await a.app.audit.query({ username: 'outage@example.com', limit: 20 });
      assert.deepEqual(records.filter((e) => e.action === 'login').map((e) => e.reason), ['ok', 'ok', 'unavailable', 'unavailable', 'ok']);
    });

    it('losing an instance loses nothing: sessions on the other go on, and new clients are served from Redis', async () => {
      const { password } = await a.app.admin.appPasswords.create(CLI_ACTOR, { username: 'survivor@example.com', name: 'Printer' });
      const { t, reply } = await imapLogin(d, 'survivor@example.com', password);
      assert.match(reply, /^a OK/m);
      const survivor = d.instances.find((i) => i.liveSessions === 1)!;
      const lost = survivor === a ? b : a;
      const earlier = await survivor.app.audit.query({ limit: 1000 });
      await lost.close();
      t.send('b NOOP');
      await t.until(/^b OK/);
      // Round robin still names the lost instance every other time; HAProxy retries and redispatches those.
      for (let n = 0; n < 3; n++) {
        const login = await imapLogin(d, 'survivor@example.com', password);
        assert.match(login.reply, /^a OK/m);
        login.t.close();
      }
      const records = await survivor.app.store.list();
      assert.ok(records.some((r) => r.username === 'survivor@example.com' && r.revokedAt === null));
      const now = await survivor.app.audit.query({ limit: 1000 });
      assert.ok(earlier.length > 0 && now.length >= earlier.length + 3);
      t.close();
    });
  });
}
