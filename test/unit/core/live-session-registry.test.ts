import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { LiveSessionRegistry } from '../../../src/core/live-session-registry.js';
import { silentEventLogger } from '../../../src/core/event-logger.js';
import { SqliteCredentialStore } from '../../../src/credentials/sqlite-credential-store.js';
import { openSqliteDatabase } from '../../../src/credentials/sqlite-database.js';
import { makeRecord } from '../../helpers/records.js';

describe('LiveSessionRegistry', () => {
  it('closes the sessions of revoked, removed and expired passwords, and only those', async () => {
    const store = new SqliteCredentialStore(openSqliteDatabase(':memory:'));
    const clock = { now: 1000 };
    const [kept, revoked, expiring] = [makeRecord(), makeRecord(), makeRecord({ expiresAt: 2000 })];
    for (const r of [kept, revoked, expiring]) await store.insert(r, { maxActivePerUser: 10, now: 0 });
    const registry = new LiveSessionRegistry(store, () => clock.now, silentEventLogger, 1000);
    const closed: string[] = [];
    registry.register(kept.id, (why) => closed.push(`kept:${why}`));
    registry.register(revoked.id, (why) => closed.push(`revoked-1:${why}`));
    registry.register(revoked.id, (why) => closed.push(`revoked-2:${why}`));
    registry.register(expiring.id, (why) => closed.push(`expiring:${why}`));
    const gone = registry.register('ap_removedremovedre', (why) => closed.push(`removed:${why}`));
    await registry.sweep();
    assert.deepEqual(closed, ['removed:revoked']);
    gone();
    await store.revoke(revoked.id, 1500);
    clock.now = 2000;
    await registry.sweep();
    assert.deepEqual(closed.sort(), ['expiring:expired', 'removed:revoked', 'revoked-1:revoked', 'revoked-2:revoked']);
    assert.equal(registry.size, 1);
  });

  it('an unregistered session is never closed, and a failing store skips a round without closing anything', async () => {
    const record = makeRecord();
    let fail = true;
    const store = { get: async () => (fail ? Promise.reject(new Error('store down')) : { ...record, revokedAt: 5 }) } as unknown as SqliteCredentialStore;
    const registry = new LiveSessionRegistry(store, () => 0, silentEventLogger, 1000);
    const closed: string[] = [];
    const unregister = registry.register(record.id, () => closed.push('a'));
    registry.register(record.id, () => closed.push('b'));
    await registry.sweep();
    assert.deepEqual(closed, []);
    unregister();
    fail = false;
    await registry.sweep();
    assert.deepEqual(closed, ['b']);
  });

  it('a revocation hint checks the named passwords at once, only those in use here, and none is lost mid-round', async () => {
    const store = new SqliteCredentialStore(openSqliteDatabase(':memory:'));
    const [one, two, elsewhere] = [makeRecord(), makeRecord(), makeRecord()];
    for (const r of [one, two, elsewhere]) await store.insert(r, { maxActivePerUser: 10, now: 0 });
    const reads: string[] = [];
    let gate: Promise<void> = Promise.resolve();
    const counting = Object.assign(Object.create(store) as SqliteCredentialStore, {
      get: async (id: string) => {
        reads.push(id);
        const record = await store.get(id);
        await gate;
        return record;
      },
    });
    // An interval no test waits for: only hints can close anything here.
    const registry = new LiveSessionRegistry(counting, () => 0, silentEventLogger, 3_600_000);
    let hear: (ids: string[]) => void = () => {};
    registry.listen({ subscribe: (listener) => ((hear = listener), () => (hear = () => {})) });
    const closed: string[] = [];
    registry.register(one.id, (why) => closed.push(`one:${why}`));
    registry.register(two.id, (why) => closed.push(`two:${why}`));

    await store.revoke(one.id, 1);
    hear([one.id, elsewhere.id]);
    await new Promise((r) => setImmediate(r));
    assert.deepEqual(closed, ['one:revoked']);
    assert.deepEqual(reads, [one.id], 'a password in use elsewhere costs no read');

    // A hint heard while a round is busy (its read of `two` already done, before the revocation) is checked in a
    // round right after it.
    let open: () => void = () => {};
    gate = new Promise((r) => (open = r));
    const round = registry.sweep();
    await new Promise((r) => setImmediate(r));
    await store.revoke(two.id, 2);
    hear([two.id]);
    open();
    await round;
    assert.deepEqual(closed, ['one:revoked', 'two:revoked']);
    assert.deepEqual(reads, [one.id, two.id, two.id]);

    registry.stop();
    assert.equal(registry.size, 0);
  });
});
