import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import { openApp, type App } from '../../../src/app.js';
import { CLI_ACTOR, type Actor } from '../../../src/core/actor.js';
import { createLogger } from '../../../src/observability/logger.js';
import { makeTestConfig, type TestConfig } from '../../helpers/test-config.js';

const user = (id: string, mailboxes: string[] = [id]): Actor => ({ role: 'user', id, mailboxes, ip: '198.51.100.7', userAgent: 'Firefox/140' });
const admin: Actor = { role: 'admin', id: 'boss@example.com', mailboxes: ['boss@example.com'], ip: '198.51.100.9', userAgent: 'Safari' };
const alice = user('alice@example.com', ['alice@example.com', 'scanner@example.com']);
const bob = user('bob@example.com');

describe('AppPasswordAdmin: who may do what (the same rules for the CLI and the portal)', () => {
  let tc: TestConfig;
  let app: App;
  const clock = { now: 1_800_000_000_000 };

  before(async () => {
    tc = makeTestConfig({ app_passwords: { setup_host: 'mail.example.com' } });
    app = await openApp(tc.config, { logger: createLogger('silent'), clock: () => clock.now });
  });
  after(async () => {
    await app.close();
    tc.cleanup();
  });

  const admins = () => app.admin.appPasswords;

  it('a user creates for themselves, their own mailbox by default or one granted to them, never another', async () => {
    const own = await admins().create(alice, { name: 'Phone' });
    assert.deepEqual([own.view.username, own.view.mailbox, own.view.createdBy], ['alice@example.com', 'alice@example.com', 'alice@example.com']);
    const granted = await admins().create(alice, { name: 'Scanner', mailbox: 'Scanner@Example.com' });
    assert.equal(granted.view.mailbox, 'scanner@example.com');
    await assert.rejects(admins().create(alice, { name: 'X', username: 'bob@example.com' }), { code: 'PG_FORBIDDEN' });
    await assert.rejects(admins().create(alice, { name: 'X', mailbox: 'ceo@example.com' }), { code: 'PG_FORBIDDEN' });
    await assert.rejects(admins().create(bob, { name: 'X', mailbox: 'scanner@example.com' }), { code: 'PG_FORBIDDEN' });
    await assert.rejects(admins().create(alice, { name: 'X', policy: { maxMessagesPerDay: 5 } }), { code: 'PG_FORBIDDEN' });
    assert.equal(own.setup.host, 'mail.example.com');
  });

  it('an admin and the operator create for anyone, with a policy', async () => {
    const byAdmin = await admins().create(admin, { username: 'carol@example.com', name: 'Printer', policy: { maxMessagesPerDay: 5 } });
    assert.equal(byAdmin.view.policy.maxMessagesPerDay, 5);
    assert.equal(byAdmin.view.createdBy, 'boss@example.com');
    const byCli = await admins().create(CLI_ACTOR, { username: 'carol@example.com', name: 'Fax', mailbox: 'shared@example.com' });
    assert.equal(byCli.view.mailbox, 'shared@example.com');
  });

  it('a user lists, shows and changes only their own; another user\'s id reads as unknown', async () => {
    await admins().create(alice, { name: 'Alice laptop' });
    const bobs = await admins().create(bob, { name: 'Bob laptop' });
    const mine = await admins().list(alice, { username: 'bob@example.com' });
    assert.ok(mine.length > 0 && mine.every((v) => v.username === 'alice@example.com'), 'a user filter cannot widen a user\'s list');
    const unknown = await admins().show(alice, 'ap_nosuchidxxxxxxxx').catch((e: Error) => e);
    const others = await admins().show(alice, bobs.view.id).catch((e: Error) => e);
    assert.deepEqual([(others as { code?: string }).code, (others as Error).message], ['PG_NOT_FOUND', `no app password with id "${bobs.view.id}"`]);
    assert.equal((unknown as { code?: string }).code, 'PG_NOT_FOUND');
    for (const change of [
      () => admins().turnOff(alice, bobs.view.id),
      () => admins().turnOn(alice, bobs.view.id),
      () => admins().revoke(alice, bobs.view.id),
      () => admins().edit(alice, bobs.view.id, { name: 'mine now' }),
      () => admins().setupSheet(alice, bobs.view.id),
    ]) {
      await assert.rejects(change(), { code: 'PG_NOT_FOUND' });
    }
    await assert.rejects(admins().revokeAll(alice, 'bob@example.com'), { code: 'PG_FORBIDDEN' });
    assert.equal((await admins().show(CLI_ACTOR, bobs.view.id)).revokedAt, null, 'nothing happened to it');
  });

  it('a user edits name, expiry and networks of their own but not the policy; an admin may', async () => {
    const { view } = await admins().create(alice, { name: 'Tablet' });
    await assert.rejects(admins().edit(alice, view.id, { policy: { maxMessagesPerHour: 1 } }), { code: 'PG_FORBIDDEN' });
    const edited = await admins().edit(alice, view.id, { name: 'Tablet (kitchen)', expiresAt: clock.now + 3_600_000, allowedNetworks: ['192.0.2.0/24'] });
    assert.deepEqual([edited.name, edited.expiresAt, edited.allowedNetworks], ['Tablet (kitchen)', clock.now + 3_600_000, ['192.0.2.0/24']]);
    const byAdmin = await admins().edit(admin, view.id, { policy: { maxMessagesPerHour: 2 } });
    assert.equal(byAdmin.policy.maxMessagesPerHour, 2);
    assert.equal(byAdmin.name, 'Tablet (kitchen)', 'fields left out stay');
    await assert.rejects(admins().edit(admin, view.id, {}), { code: 'PG_INVALID_INPUT' });
    await assert.rejects(admins().edit(admin, view.id, { expiresAt: clock.now - 1 }), { code: 'PG_INVALID_INPUT' });
  });

  it('turn off and on say whether they changed anything; a revoked password cannot be turned on', async () => {
    const { view } = await admins().create(alice, { name: 'Watch' });
    const off = await admins().turnOff(alice, view.id);
    assert.deepEqual([off.changed, off.view.disabledAt], [true, clock.now]);
    assert.equal((await admins().turnOff(admin, view.id)).changed, false);
    assert.deepEqual((await admins().list(alice, { status: 'off' })).map((v) => v.id), [view.id]);
    const on = await admins().turnOn(admin, view.id);
    assert.deepEqual([on.changed, on.view.disabledAt], [true, null]);
    assert.equal((await admins().turnOn(alice, view.id)).changed, false);
    assert.equal((await admins().revoke(alice, view.id)).changed, true);
    assert.equal((await admins().revoke(alice, view.id)).changed, false);
    await assert.rejects(admins().turnOn(alice, view.id), { code: 'PG_INVALID_INPUT' });
    await assert.rejects(admins().edit(admin, view.id, { name: 'back' }), { code: 'PG_INVALID_INPUT' });
  });

  it('records every change with the actor, its address and user agent', async () => {
    const { view } = await admins().create(alice, { name: 'Audited' });
    await admins().turnOff(alice, view.id);
    await admins().turnOn(admin, view.id);
    await admins().edit(admin, view.id, { name: 'Audited 2' });
    await admins().revoke(CLI_ACTOR, view.id);
    const events = (await app.audit.query({ username: 'alice@example.com', limit: 50 })).filter((e) => e.appPasswordId === view.id).reverse();
    assert.deepEqual(
      events.map((e) => [e.action, e.clientIp, e.detail]),
      [
        ['app-password.create', '198.51.100.7', 'by alice@example.com (user), agent "Firefox/140"'],
        ['app-password.turn-off', '198.51.100.7', 'by alice@example.com (user), agent "Firefox/140"'],
        ['app-password.turn-on', '198.51.100.9', 'by boss@example.com (admin), agent "Safari"'],
        ['app-password.edit', '198.51.100.9', 'by boss@example.com (admin), agent "Safari": changed name'],
        ['app-password.revoke', null, 'by cli:root'],
      ],
    );
  });

  it('search and status filters; revoke-all for oneself', async () => {
    // Its own passwords (each test stands alone): one in the kitchen, one for Bob alone (his own, left open).
    await admins().create(alice, { name: 'Toaster (Kitchen)' });
    const dave = user('dave@example.com');
    await admins().create(dave, { name: 'Dave phone' });
    assert.ok((await admins().list(admin, { search: 'KITCHEN' })).every((v) => v.name.toLowerCase().includes('kitchen')));
    assert.equal((await admins().list(admin, { search: 'toaster' })).length, 1);
    const { revoked } = await admins().revokeAll(dave, 'dave@example.com');
    assert.equal(revoked.length, 1);
    assert.equal((await admins().revokeAll(dave, 'dave@example.com')).revoked.length, 0);
  });
});
