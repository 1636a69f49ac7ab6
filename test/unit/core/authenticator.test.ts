import assert from 'node:assert/strict';
import { after, before, beforeEach, describe, it } from 'node:test';
import { openApp, type App } from '../../../src/app.js';
import type { AuthRequest } from '../../../src/core/authenticator.js';
import { createLogger } from '../../../src/observability/logger.js';
import { CountingHasher } from '../../helpers/counting-hasher.js';
import { makeTestConfig, type TestConfig } from '../../helpers/test-config.js';
import { CLI_ACTOR } from '../../../src/core/actor.js';

describe('Authenticator (real argon2, SQLite, in-memory limits)', () => {
  let tc: TestConfig;
  let app: App;
  let hasher: CountingHasher;
  const clock = { now: 1_800_000_000_000 };

  before(async () => {
    tc = makeTestConfig({ rate_limit: { trusted_networks: ['10.0.0.0/8', 'fd00::/8'] } });
    app = await openApp(tc.config, {
      logger: createLogger('silent'),
      clock: () => clock.now,
      decorateHasher: (inner) => (hasher = new CountingHasher(inner)),
    });
  });
  after(async () => {
    await app.close();
    tc.cleanup();
  });
  beforeEach(() => hasher.reset());

  const login = (over: Partial<AuthRequest> & { username: string; password: string }) =>
    app.authenticator.authenticate({ protocol: 'smtp', clientIp: '198.51.100.1', secure: true, ...over });
  const create = (username: string, extra: Record<string, unknown> = {}) =>
    app.admin.appPasswords.create(CLI_ACTOR, { username, name: 'Scanner', ...extra });
  const lastAudit = async (username: string) => (await app.audit.query({ username, limit: 1 }))[0]!;

  it('accepts a valid app password, returns the mailbox, records the use and audits it', async () => {
    const { password, view } = await create('ok@example.com', { mailbox: 'shared@example.com' });
    const outcome = await login({ username: 'OK@example.com', password, clientIp: '::ffff:198.51.100.7' });
    assert.deepEqual(outcome, {
      ok: true,
      reason: 'ok',
      username: 'ok@example.com',
      mailbox: 'shared@example.com',
      appPasswordId: view.id,
      appPasswordName: 'Scanner',
      policy: { allowedSenders: [], allowedRecipientDomains: [], maxMessageBytes: null, maxMessagesPerHour: null, maxMessagesPerDay: null, checkFromHeader: null },
    });
    const record = (await app.store.get(view.id))!;
    assert.deepEqual([record.lastUsedIp, record.lastUsedProtocol, record.useCount, record.lastUsedAt], ['198.51.100.7', 'smtp', 1, clock.now]);
    const audit = await lastAudit('ok@example.com');
    assert.deepEqual([audit.action, audit.reason, audit.appPasswordId, audit.clientIp, audit.protocol], ['login', 'ok', view.id, '198.51.100.7', 'smtp']);
  });

  it('answers an unknown user and a wrong password alike: same outcome, one argon2 verification each', async () => {
    await create('known@example.com');
    const wrong = await login({ username: 'known@example.com', password: 'abcd-efgh-ijkl-mnop', clientIp: '198.51.100.20' });
    assert.equal(hasher.verifications, 1);
    const unknown = await login({ username: 'unknown@example.com', password: 'abcd-efgh-ijkl-mnop', clientIp: '198.51.100.21' });
    assert.equal(hasher.verifications, 2);
    const strip = ({ delayMs, ...rest }: { delayMs: number }) => (assert.ok(delayMs >= 1000 && delayMs <= 1500, `delay ${delayMs}`), rest);
    assert.deepEqual(strip(unknown as never), strip(wrong as never));
    assert.deepEqual(strip(wrong as never), { ok: false, reason: 'invalid-credentials', temporary: false });
    assert.equal((await lastAudit('unknown@example.com')).reason, 'invalid-credentials');
  });

  it('refuses a password outside its scopes or its allowed networks, and audits why', async () => {
    const { password } = await create('policy@example.com', { scopes: ['smtp'], allowedNetworks: ['192.0.2.0/24', '2001:db8::/32'] });
    assert.equal((await login({ username: 'policy@example.com', password, protocol: 'imap', clientIp: '192.0.2.5' })).reason, 'scope-denied');
    assert.equal((await lastAudit('policy@example.com')).detail, 'allowed: smtp');
    assert.equal((await login({ username: 'policy@example.com', password, clientIp: '198.51.100.5' })).reason, 'network-denied');
    assert.equal((await login({ username: 'policy@example.com', password, clientIp: '::ffff:192.0.2.9' })).ok, true);
    assert.equal((await login({ username: 'policy@example.com', password, clientIp: '2001:db8::42' })).ok, true);
  });

  it('names a revoked or expired password in the audit log; a device repeating it counts once, so it blocks nobody', async () => {
    const revoked = await create('stale@example.com', { name: 'Old printer' });
    await app.admin.appPasswords.revoke(CLI_ACTOR, revoked.view.id);
    for (let i = 0; i < 15; i++) {
      const outcome = await login({ username: 'stale@example.com', password: revoked.password, clientIp: '198.51.100.30' });
      assert.deepEqual([outcome.ok, outcome.reason], [false, 'revoked']);
    }
    const audit = await lastAudit('stale@example.com');
    assert.deepEqual([audit.reason, audit.appPasswordName], ['revoked', 'Old printer']);
    // 15 tries of the revoked password did not block the pair: a current password from that ip still works.
    const current = await create('stale@example.com');
    assert.equal((await login({ username: 'stale@example.com', password: current.password, clientIp: '198.51.100.30' })).ok, true);

    const expiring = await create('stale@example.com', { expiresAt: clock.now + 1000 });
    clock.now += 1000;
    assert.equal((await login({ username: 'stale@example.com', password: expiring.password, clientIp: '198.51.100.30' })).reason, 'expired');
    clock.now -= 1000;
  });

  it('no right-password oracle: a right password refused costs one argon2 even from the cache, and counts like a wrong one', async () => {
    const user = 'oracle@example.com';
    const scoped = await create(user, { scopes: ['imap'] });
    const revoked = await create(user);
    assert.equal((await login({ username: user, password: revoked.password, clientIp: '203.0.113.50' })).ok, true); // now in the cache
    await app.admin.appPasswords.revoke(CLI_ACTOR, revoked.view.id);
    hasher.reset();
    const strip = (o: object) => Object.fromEntries(Object.entries(o).filter(([k]) => k !== 'delayMs' && k !== 'reason'));
    const wrong = await login({ username: user, password: 'wron-gwro-ngwr-ongx', clientIp: '203.0.113.50' });
    assert.equal(hasher.verifications, 1);
    const refused = await login({ username: user, password: revoked.password, clientIp: '203.0.113.50' });
    assert.equal(hasher.verifications, 2, 'the cached right password cost an argon2 like the wrong one');
    assert.deepEqual(strip(refused), strip(wrong));
    for (let i = 0; i < 2; i++) await login({ username: user, password: scoped.password, clientIp: '203.0.113.50' }); // scope-denied, twice
    // pair.max_failures is 10: 1 wrong + 1 revoked + 1 scope-denied (its repeat counts once) = 3; 7 more distinct guesses block.
    for (let i = 0; i < 7; i++) await login({ username: user, password: `gues-sgue-ssgu-ess${String.fromCharCode(97 + i)}`, clientIp: '203.0.113.50' });
    assert.equal((await login({ username: user, password: scoped.password, clientIp: '203.0.113.50' })).reason, 'rate-limited', 'right-password refusals were counted');
  });

  it('skips argon2 for a repeated login (credential cache), and a revocation still applies at once', async () => {
    const { password, view } = await create('cache@example.com');
    assert.equal((await login({ username: 'cache@example.com', password })).ok, true);
    assert.equal(hasher.verifications, 1);
    for (let i = 0; i < 5; i++) assert.equal((await login({ username: 'cache@example.com', password: password.toUpperCase() })).ok, true);
    assert.equal(hasher.verifications, 1, 'cached logins cost no argon2');
    assert.match((await lastAudit('cache@example.com')).detail!, /cached/);
    await app.admin.appPasswords.revoke(CLI_ACTOR, view.id);
    assert.equal((await login({ username: 'cache@example.com', password })).reason, 'revoked');
    const all = await create('cache@example.com');
    assert.equal((await login({ username: 'cache@example.com', password: all.password })).ok, true);
    await app.admin.appPasswords.revokeAll(CLI_ACTOR, 'cache@example.com');
    assert.equal((await login({ username: 'cache@example.com', password: all.password })).reason, 'revoked');
  });

  it('holds under attack: 2,000 guesses from 20 ips get nowhere, the real user still logs in from the office', async () => {
    const victim = 'victim@example.com';
    const { password } = await create(victim);
    hasher.reset();
    let successes = 0;
    const reasons = new Map<string, number>();
    for (let round = 0; round < 100; round++) {
      await Promise.all(
        Array.from({ length: 20 }, async (_, ipIndex) => {
          const guess = `guess${String.fromCharCode(97 + (round % 26))}${String.fromCharCode(97 + ipIndex)}`.padEnd(16, 'x');
          const outcome = await login({ username: victim, password: guess, clientIp: `203.0.113.${ipIndex + 1}` });
          if (outcome.ok) successes++;
          reasons.set(outcome.reason, (reasons.get(outcome.reason) ?? 0) + 1);
        }),
      );
    }
    assert.equal(successes, 0);
    // Each (user, ip) pair is verified at most pair.max_failures (10) times before its block: 20 × 10 = 200.
    assert.ok(hasher.verifications <= 200, `argon2 verifications: ${hasher.verifications}`);
    console.log(`# attack: 2000 guesses from 20 ips cost ${hasher.verifications} argon2 verifications`);
    assert.ok((reasons.get('rate-limited') ?? 0) + (reasons.get('user-locked') ?? 0) >= 1800, JSON.stringify([...reasons]));
    // From the user's own (trusted) network the real password still works; the attackers' ips stay blocked.
    assert.equal((await login({ username: victim, password, clientIp: '10.1.2.3' })).ok, true);
    assert.equal((await login({ username: victim, password, clientIp: 'fd00::1234' })).ok, true);
    const fromAttacker = await login({ username: victim, password, clientIp: '203.0.113.1' });
    assert.deepEqual([fromAttacker.ok, fromAttacker.ok || fromAttacker.temporary], [false, true]);
  });

  it('serialises parallel guesses of one pair, so 500 at once cost at most max_failures verifications', async () => {
    const { password } = await create('parallel@example.com');
    hasher.reset();
    const outcomes = await Promise.all(
      Array.from({ length: 500 }, (_, i) => login({ username: 'parallel@example.com', password: `para-llel-gues-s${String.fromCharCode(97 + (i % 26))}${String.fromCharCode(97 + Math.floor(i / 26))}`, clientIp: '203.0.113.200' })),
    );
    assert.equal(outcomes.filter((o) => o.ok).length, 0);
    assert.equal(hasher.verifications, 10, 'pair.max_failures');
    assert.equal((await login({ username: 'parallel@example.com', password, clientIp: '203.0.113.201' })).ok, true);
  });

  it('limits an IPv6 attacker per /64, however many of its addresses it rotates through', async () => {
    await create('six@example.com');
    hasher.reset();
    const reasons = [];
    for (let i = 1; i <= 30; i++) {
      // Distinct guesses: a repeated one counts once (login-limiter.ts).
      reasons.push((await login({ username: 'six@example.com', password: `abcd-abcd-abcd-ab${String.fromCharCode(97 + (i % 26))}${String.fromCharCode(97 + Math.floor(i / 26))}`, clientIp: `2001:db8:aa:bb::${i.toString(16)}` })).reason);
    }
    assert.equal(hasher.verifications, 10);
    assert.deepEqual(reasons.slice(10), Array(20).fill('rate-limited'));
    const audit = await lastAudit('six@example.com');
    assert.equal(audit.clientIp, '2001:db8:aa:bb::1e', 'the audit log keeps the full address');
  });

  it('keeps a user\'s own network open while an attacker elsewhere has locked the user (real timers)', async () => {
    const user = 'homeuser@example.com';
    const { password } = await create(user);
    assert.equal((await login({ username: user, password, clientIp: '198.51.100.99' })).ok, true);
    for (let i = 0; i < 120; i++) {
      await login({ username: user, password: `lock-outg-uess-${String.fromCharCode(97 + (i % 26))}${String.fromCharCode(97 + Math.floor(i / 26))}`, clientIp: `192.0.2.${(i % 12) + 1}` });
    }
    await new Promise((r) => setTimeout(r, 100)); // an in-memory timer that overflowed would have fired by now
    assert.equal((await login({ username: user, password, clientIp: '198.51.100.98' })).reason, 'user-locked', 'locked where the user never logged in');
    assert.equal((await login({ username: user, password, clientIp: '198.51.100.99' })).ok, true, 'open from where the user did');
  });

  it('counts a device repeating one stale password once towards the user lock', async () => {
    const user = 'repeat@example.com';
    const { password } = await create(user);
    for (let i = 0; i < 300; i++) {
      // 30 ips × 10 tries of the same wrong password: one distinct password (and each pair counts it once).
      await login({ username: user, password: 'stale-stal-esta-lexx', clientIp: `198.18.0.${(i % 30) + 1}` });
    }
    assert.equal((await login({ username: user, password, clientIp: '198.18.1.1' })).ok, true);
  });
});
