import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import type { AuditEvent, AuditLog } from '../../src/core/audit-log.js';
import type { CredentialStore } from '../../src/core/credential-store.js';
import type { WebSession, WebSessionStore } from '../../src/core/web-session-store.js';
import { makeRecord } from '../helpers/records.js';

export interface StoreUnderTest {
  store: CredentialStore;
  /** An audit log with a 1-day retention on the given clock. */
  audit: AuditLog;
  clock: { now: number };
  /** How many sign-in records the backend holds, hidden or not (SQL COUNT, XLEN): what prune() really removed. */
  auditEntriesStored(): Promise<number>;
  /** Portal sessions on the same clock. */
  webSessions: WebSessionStore;
  close(): Promise<void>;
}

const limits = (now = 1_800_000_000_000, maxActivePerUser = 10) => ({ maxActivePerUser, now });

/**
 * One behaviour for every store. Each implementation's test file calls this with a factory that gives a
 * fresh, empty store (a new SQLite file; a new Redis key prefix).
 */
export function credentialStoreContract(name: string, open: () => Promise<StoreUnderTest>): void {
  describe(`${name}: credential store contract`, () => {
    let t: StoreUnderTest;
    before(async () => {
      t = await open();
    });
    after(async () => t.close());

    it('inserts, finds by (username, selector), gets by id', async () => {
      const r = makeRecord({
        username: 'find@example.com',
        allowedNetworks: ['10.0.0.0/8'],
        expiresAt: 1_900_000_000_000,
        policy: { allowedSenders: ['scans@example.com'], allowedRecipientDomains: ['example.org'], maxMessageBytes: 10_000_000, maxMessagesPerHour: 20, maxMessagesPerDay: null, checkFromHeader: true },
      });
      assert.deepEqual(await t.store.insert(r, limits()), { ok: true });
      assert.deepEqual(await t.store.findBySelector('find@example.com', r.selector), r);
      assert.deepEqual(await t.store.get(r.id), r);
      assert.equal(await t.store.findBySelector('find@example.com', 'ffffff'), null);
      assert.equal(await t.store.findBySelector('other@example.com', r.selector), null);
      assert.equal(await t.store.get('ap_doesnotexistxxx'), null);
    });

    it('refuses a second record with the same selector for the same user', async () => {
      const a = makeRecord({ username: 'sel@example.com', selector: 'abcdef' });
      const b = makeRecord({ username: 'sel@example.com', selector: 'abcdef' });
      const c = makeRecord({ username: 'other-sel@example.com', selector: 'abcdef' });
      assert.deepEqual(await t.store.insert(a, limits()), { ok: true });
      assert.deepEqual(await t.store.insert(b, limits()), { ok: false, reason: 'selector-taken' });
      assert.deepEqual(await t.store.insert(c, limits()), { ok: true });
      assert.equal(await t.store.get(b.id), null);
    });

    it('caps active passwords per user; revoked and expired ones do not count', async () => {
      const u = 'cap@example.com';
      const now = 1_800_000_000_000;
      for (let i = 0; i < 3; i++) assert.deepEqual(await t.store.insert(makeRecord({ username: u }), limits(now, 3)), { ok: true });
      assert.deepEqual(await t.store.insert(makeRecord({ username: u }), limits(now, 3)), { ok: false, reason: 'limit-reached' });
      const [first] = await t.store.list({ username: u });
      await t.store.revoke(first!.id, now);
      assert.deepEqual(await t.store.insert(makeRecord({ username: u, expiresAt: now + 1000 }), limits(now, 3)), { ok: true });
      assert.deepEqual(await t.store.insert(makeRecord({ username: u }), limits(now, 3)), { ok: false, reason: 'limit-reached' });
      // Once that one has expired it no longer counts.
      assert.deepEqual(await t.store.insert(makeRecord({ username: u }), limits(now + 1000, 3)), { ok: true });
    });

    it('lists oldest first, all users or one', async () => {
      const a = makeRecord({ username: 'list-b@example.com', createdAt: 2 });
      const b = makeRecord({ username: 'list-a@example.com', createdAt: 1 });
      const c = makeRecord({ username: 'list-b@example.com', createdAt: 3 });
      for (const r of [a, b, c]) await t.store.insert(r, limits());
      assert.deepEqual((await t.store.list({ username: 'list-b@example.com' })).map((r) => r.id), [a.id, c.id]);
      const all = (await t.store.list()).map((r) => r.id);
      assert.ok(all.indexOf(b.id) < all.indexOf(a.id) && all.indexOf(a.id) < all.indexOf(c.id));
    });

    it('revokes one record once, keeping the first revocation time', async () => {
      const r = makeRecord({ username: 'revoke@example.com' });
      await t.store.insert(r, limits());
      assert.equal((await t.store.revoke(r.id, 111))!.revokedAt, 111);
      assert.equal((await t.store.revoke(r.id, 222))!.revokedAt, 111);
      assert.equal((await t.store.findBySelector(r.username, r.selector))!.revokedAt, 111);
      assert.equal(await t.store.revoke('ap_doesnotexistxxx', 1), null);
    });

    it('revokes all records of one user and no one else', async () => {
      const u = 'all@example.com';
      const mine = [makeRecord({ username: u }), makeRecord({ username: u }), makeRecord({ username: u })];
      const theirs = makeRecord({ username: 'bystander@example.com' });
      for (const r of [...mine, theirs]) await t.store.insert(r, limits());
      await t.store.revoke(mine[0]!.id, 5);
      const revoked = await t.store.revokeAll(u, 7);
      assert.deepEqual(revoked.map((r) => r.id).sort(), [mine[1]!.id, mine[2]!.id].sort());
      assert.ok(revoked.every((r) => r.revokedAt === 7));
      const after = await t.store.list({ username: u });
      assert.deepEqual(after.map((r) => r.revokedAt).sort(), [5, 7, 7]);
      assert.equal((await t.store.get(theirs.id))!.revokedAt, null);
      assert.deepEqual(await t.store.revokeAll(u, 9), []);
      // The cap counts none of them any more.
      for (let i = 0; i < 3; i++) assert.deepEqual(await t.store.insert(makeRecord({ username: u }), limits(10, 3)), { ok: true });
    });

    it('records the last use and counts uses', async () => {
      const r = makeRecord({ username: 'use@example.com' });
      await t.store.insert(r, limits());
      await t.store.recordUse(r.id, { at: 1000, ip: '192.0.2.7', protocol: 'smtp' });
      await t.store.recordUse(r.id, { at: 2000, ip: '2001:db8::1', protocol: 'imap' });
      const got = (await t.store.get(r.id))!;
      assert.deepEqual([got.lastUsedAt, got.lastUsedIp, got.lastUsedProtocol, got.useCount], [2000, '2001:db8::1', 'imap', 2]);
      await t.store.recordUse('ap_doesnotexistxxx', { at: 1, ip: '192.0.2.1', protocol: 'smtp' });
    });

    it('replaces a hash only when it is still the expected one', async () => {
      const r = makeRecord({ username: 'rehash@example.com' });
      await t.store.insert(r, limits());
      assert.equal(await t.store.replaceHash(r.id, 'not-the-hash', '$argon2id$new1'), false);
      assert.equal(await t.store.replaceHash(r.id, r.hash, '$argon2id$new2'), true);
      assert.equal((await t.store.get(r.id))!.hash, '$argon2id$new2');
    });

    it('imports records as given, replacing one with the same id, and counts what it did', async () => {
      const r = makeRecord({ username: 'put@example.com', useCount: 42, revokedAt: 9, lastUsedIp: '192.0.2.9', lastUsedAt: 8, lastUsedProtocol: 'smtp' });
      assert.deepEqual(await t.store.importRecords([r]), { added: 1, replaced: 0, keptRevoked: 0 });
      assert.deepEqual(await t.store.get(r.id), r);
      assert.deepEqual(await t.store.findBySelector(r.username, r.selector), r);
      const changed = { ...r, name: 'Renamed', selector: '0badc0' };
      assert.deepEqual(await t.store.importRecords([changed]), { added: 0, replaced: 1, keptRevoked: 0 });
      assert.deepEqual(await t.store.get(r.id), changed);
      assert.equal(await t.store.findBySelector(r.username, r.selector), null);
      assert.deepEqual(await t.store.list({ username: 'put@example.com' }), [changed]);
    });

    it('never brings a revoked record back to life, and keeps the later last use', async () => {
      const monday = makeRecord({ username: 'stolen@example.com', lastUsedAt: 100, lastUsedIp: '192.0.2.1', lastUsedProtocol: 'smtp', useCount: 3 });
      const other = makeRecord({ username: 'stolen@example.com', lastUsedAt: 500, lastUsedIp: '192.0.2.5', lastUsedProtocol: 'imap', useCount: 1 });
      await t.store.insert(monday, limits());
      await t.store.insert(other, limits());
      await t.store.recordUse(monday.id, { at: 200, ip: '198.51.100.7', protocol: 'imap' });
      await t.store.revoke(monday.id, 300);
      // Monday's file: the first record active and last used at 100; the second used earlier than the file says.
      const counts = await t.store.importRecords([monday, { ...other, lastUsedAt: 400, lastUsedIp: '192.0.2.4', useCount: 9 }]);
      assert.deepEqual(counts, { added: 0, replaced: 1, keptRevoked: 1 });
      const kept = (await t.store.get(monday.id))!;
      assert.equal(kept.revokedAt, 300, 'still revoked');
      assert.deepEqual([kept.lastUsedAt, kept.lastUsedIp, kept.lastUsedProtocol, kept.useCount], [200, '198.51.100.7', 'imap', 4]);
      assert.equal((await t.store.findBySelector(monday.username, monday.selector))!.revokedAt, 300);
      const replaced = (await t.store.get(other.id))!;
      assert.deepEqual([replaced.lastUsedAt, replaced.lastUsedIp, replaced.lastUsedProtocol, replaced.useCount], [500, '192.0.2.5', 'imap', 9]);
      // The revoked record does not count against the cap: nine more fit beside the other one.
      for (let i = 0; i < 9; i++) assert.deepEqual(await t.store.insert(makeRecord({ username: 'stolen@example.com' }), limits()), { ok: true });
      assert.deepEqual(await t.store.insert(makeRecord({ username: 'stolen@example.com' }), limits()), { ok: false, reason: 'limit-reached' });
      assert.deepEqual(await t.store.revokeAll('stolen@example.com', 600).then((rs) => rs.some((x) => x.id === monday.id)), false);
    });

    it('lets a file revoke a record that is active here', async () => {
      const r = makeRecord({ username: 'filerevoke@example.com' });
      await t.store.insert(r, limits());
      assert.deepEqual(await t.store.importRecords([{ ...r, revokedAt: 700 }]), { added: 0, replaced: 1, keptRevoked: 0 });
      assert.equal((await t.store.get(r.id))!.revokedAt, 700);
      assert.deepEqual(await t.store.revokeAll('filerevoke@example.com', 800), []);
    });

    it('turns a record off and on (disabledAt), keeping the first time it was turned off, and round-trips it', async () => {
      const r = makeRecord({ username: 'toggle@example.com' });
      await t.store.insert(r, limits());
      const off = await t.store.update(r.id, { disabledAt: 100 });
      assert.deepEqual([off!.before.disabledAt, off!.after.disabledAt], [null, 100]);
      assert.equal((await t.store.update(r.id, { disabledAt: 200 }))!.after.disabledAt, 100, 'already off: the first time stays');
      assert.equal((await t.store.findBySelector(r.username, r.selector))!.disabledAt, 100);
      assert.equal((await t.store.list({ username: r.username }))[0]!.disabledAt, 100);
      assert.equal((await t.store.update(r.id, { disabledAt: null }))!.after.disabledAt, null);
      assert.equal((await t.store.get(r.id))!.disabledAt, null);
      assert.equal(await t.store.update('ap_nosuchidxxxxxxxx', { disabledAt: 1 }), null);
    });

    it('edits name, expiry, networks and policy in place, never a revoked record; expiry counts towards the cap', async () => {
      const r = makeRecord({ username: 'edit@example.com', expiresAt: 1_800_000_000_500 });
      await t.store.insert(r, limits());
      const policy = { ...r.policy, maxMessagesPerDay: 7 };
      const { after } = (await t.store.update(r.id, { name: 'Renamed', expiresAt: null, allowedNetworks: ['192.0.2.0/24'], policy }))!;
      assert.deepEqual([after.name, after.expiresAt, after.allowedNetworks, after.policy.maxMessagesPerDay, after.hash], ['Renamed', null, ['192.0.2.0/24'], 7, r.hash]);
      assert.deepEqual(await t.store.get(r.id), after);
      // Without an expiry it holds a slot after the old expiry too (the cap reads the new one).
      await t.store.insert(makeRecord({ username: 'edit@example.com' }), limits());
      assert.deepEqual(await t.store.insert(makeRecord({ username: 'edit@example.com' }), limits(1_800_000_001_000, 2)), { ok: false, reason: 'limit-reached' });
      await t.store.revoke(r.id, 300);
      const revoked = (await t.store.update(r.id, { name: 'Back?', disabledAt: 5 }))!;
      assert.deepEqual([revoked.after.name, revoked.after.disabledAt, revoked.after.revokedAt], ['Renamed', null, 300]);
    });

    it('never turns back on by import a record turned off here; a file may turn one off', async () => {
      const r = makeRecord({ username: 'importoff@example.com' });
      await t.store.insert(r, limits());
      await t.store.update(r.id, { disabledAt: 400 });
      assert.deepEqual(await t.store.importRecords([{ ...r, name: 'From file', disabledAt: null }]), { added: 0, replaced: 1, keptRevoked: 0 });
      const kept = (await t.store.get(r.id))!;
      assert.deepEqual([kept.name, kept.disabledAt], ['From file', 400]);
      const other = makeRecord({ username: 'importoff@example.com' });
      await t.store.insert(other, limits());
      await t.store.importRecords([{ ...other, disabledAt: 500 }]);
      assert.equal((await t.store.get(other.id))!.disabledAt, 500);
    });

    it('answers ping', async () => {
      await t.store.ping();
    });

    describe('web sessions', () => {
      const session = (username: string, over: Partial<WebSession> = {}): WebSession => ({
        username,
        role: 'user',
        mailboxes: [username, 'scanner@example.com'],
        authTime: 1_800_000_000,
        amr: ['pwd', 'mfa'],
        createdAt: t.clock.now,
        data: { csrf: 'c-secret', pending: { state: 's', nonce: 'n' } },
        ...over,
      });

      it('stores a session by id, replaces it, and destroys it', async () => {
        const s = session('web@example.com');
        await t.webSessions.set('cookie-id-1', s, 60_000);
        assert.deepEqual(await t.webSessions.get('cookie-id-1'), s);
        assert.equal(await t.webSessions.get('cookie-id-2'), null);
        await t.webSessions.set('cookie-id-1', { ...s, role: 'admin', data: {} }, 60_000);
        assert.deepEqual(await t.webSessions.get('cookie-id-1'), { ...s, role: 'admin', data: {} });
        await t.webSessions.destroy('cookie-id-1');
        assert.equal(await t.webSessions.get('cookie-id-1'), null);
        await t.webSessions.destroy('cookie-id-1');
      });

      it('expires a session after its ttl', async () => {
        const start = t.clock.now;
        try {
          await t.webSessions.set('short-lived', session('ttl@example.com'), 60_000);
          t.clock.now += 59_000;
          assert.notEqual(await t.webSessions.get('short-lived'), null);
          t.clock.now += 1_000;
          assert.equal(await t.webSessions.get('short-lived'), null);
        } finally {
          t.clock.now = start;
        }
      });

      it('signs one user out everywhere, and no one else', async () => {
        await t.webSessions.set('laptop', session('everywhere@example.com'), 60_000);
        await t.webSessions.set('phone', session('everywhere@example.com'), 120_000);
        await t.webSessions.set('theirs', session('other@example.com'), 60_000);
        assert.equal(await t.webSessions.destroyAllFor('Everywhere@Example.com'), 2);
        assert.deepEqual([await t.webSessions.get('laptop'), await t.webSessions.get('phone')], [null, null]);
        assert.notEqual(await t.webSessions.get('theirs'), null);
        assert.equal(await t.webSessions.destroyAllFor('everywhere@example.com'), 0);
      });
    });

    describe('audit log', () => {
      const event = (over: Partial<AuditEvent>): AuditEvent => ({
        at: t.clock.now,
        action: 'login',
        protocol: 'smtp',
        username: 'audit@example.com',
        clientIp: '192.0.2.1',
        appPasswordId: null,
        appPasswordName: null,
        reason: 'invalid-credentials',
        detail: null,
        ...over,
      });

      it('returns events newest first, filtered by user and time, up to a limit', async () => {
        const base = t.clock.now;
        await t.audit.append(event({ at: base - 3000, username: 'a1@example.com', reason: 'ok', appPasswordId: 'ap_x', appPasswordName: 'Printer' }));
        await t.audit.append(event({ at: base - 2000, username: 'a2@example.com' }));
        await t.audit.append(event({ at: base - 1000, username: 'a1@example.com', reason: 'revoked', protocol: 'imap' }));
        const a1 = await t.audit.query({ username: 'a1@example.com', limit: 10 });
        assert.deepEqual(a1.map((e) => e.reason), ['revoked', 'ok']);
        assert.deepEqual(a1[1], event({ at: base - 3000, username: 'a1@example.com', reason: 'ok', appPasswordId: 'ap_x', appPasswordName: 'Printer' }));
        assert.deepEqual((await t.audit.query({ since: base - 2000, limit: 10 })).map((e) => e.at), [base - 1000, base - 2000]);
        assert.equal((await t.audit.query({ limit: 1 })).length, 1);
      });

      it('orders by each record\'s time, not by when it was written (records held through an outage are written late)', async () => {
        const base = t.clock.now;
        await t.audit.append(event({ at: base - 100, username: 'late@example.com', reason: 'ok' }));
        await t.audit.append(event({ at: base - 900, username: 'late@example.com', reason: 'unavailable' }));
        const found = await t.audit.query({ username: 'late@example.com', limit: 10 });
        assert.deepEqual(found.map((e) => [e.at, e.reason]), [
          [base - 100, 'ok'],
          [base - 900, 'unavailable'],
        ]);
      });

      it('escapes nothing itself but stores control characters as given (the CLI escapes them)', async () => {
        await t.audit.append(event({ username: 'esc\u001b]52;c;x\u0007@example.com' }));
        assert.equal((await t.audit.query({ username: 'esc\u001b]52;c;x\u0007@example.com', limit: 1 })).length, 1);
      });

      it('keeps entries only for the retention window, and prune removes the older ones from the backend', async () => {
        const old = t.clock.now - 2 * 86_400_000;
        await t.audit.append(event({ at: old, username: 'old@example.com' }));
        t.clock.now += 1; // appends trim lazily; queries never show what is past retention
        assert.deepEqual(await t.audit.query({ username: 'old@example.com', limit: 10 }), []);
        // Everything written so far falls out of the window (Redis orders by the time of writing): prune must
        // empty the backend, not only hide.
        const start = t.clock.now;
        t.clock.now += 3 * 86_400_000;
        try {
          assert.ok((await t.auditEntriesStored()) > 0);
          assert.ok((await t.audit.prune()) > 0);
          assert.equal(await t.auditEntriesStored(), 0);
        } finally {
          t.clock.now = start;
        }
      });
    });
  });
}
