import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import { CLI_ACTOR } from '../../src/core/actor.js';
import { PORTAL_USER, startPortalHarness, type PortalHarness } from '../helpers/portal-harness.js';
import { startRedis, type TestRedis } from '../helpers/redis-server.js';
import { WebClient } from '../helpers/web-client.js';

const SESSION_COOKIE = '__Host-passgate';

async function signIn(h: PortalHarness, client: WebClient, email: string): Promise<string> {
  const page = await client.get(`${h.url}/auth/login`);
  const action = /action="([^"]+)"/.exec(page.body)![1]!;
  await client.post(new URL(action, page.url).href, { account: email, mfa: 'on' });
  return client.jar.get(h.url)!.get(SESSION_COOKIE)!;
}

/** Carries a session cookie from one instance's origin to another's (one balancer name in real life). */
function carry(client: WebClient, from: PortalHarness, to: PortalHarness): void {
  client.jar.set(to.url, new Map(client.jar.get(from.url)));
}

describe('portal sessions on Redis: shared by every instance', () => {
  let redis: TestRedis;
  let a: PortalHarness;
  let b: PortalHarness;

  before(async () => {
    redis = await startRedis();
    const config = { redis: { url: redis.url, key_prefix: redis.prefix } };
    [a, b] = await Promise.all([startPortalHarness({ config }), startPortalHarness({ config })]);
  });
  after(async () => {
    await Promise.all([a?.close(), b?.close()]);
    await redis?.close();
  });

  it('a session made on one instance works on the other, and signing out there ends it everywhere', async () => {
    const client = new WebClient();
    const id = await signIn(a, client, PORTAL_USER);
    carry(client, a, b);
    const onB = await client.get(`${b.url}/passwords`);
    assert.equal(onB.status, 200);
    assert.match(onB.body, /<h1>My app passwords<\/h1>/);
    // A form made on one instance is accepted by the other: the CSRF secret is in the shared session.
    const { view } = await a.app.admin.appPasswords.create(CLI_ACTOR, { username: PORTAL_USER, name: 'Shared' });
    const token = WebClient.field((await client.get(`${a.url}/passwords`)).body, '_csrf');
    await client.post(`${b.url}/passwords/${view.id}/turn-off`, { _csrf: token, back: '/passwords' });
    assert.notEqual((await a.app.admin.appPasswords.show(CLI_ACTOR, view.id)).disabledAt, null);

    await client.post(`${b.url}/auth/logout`, { _csrf: token });
    assert.equal(await a.app.webSessions.get(id), null);
    assert.equal((await client.get(`${a.url}/passwords`, { follow: false })).status, 303, 'signed out on A too: sent to sign in');
  });

  it('revoke all ends the person\'s other sessions on every instance, and keeps the one that asked', async () => {
    const phone = new WebClient();
    const desk = new WebClient();
    const other = await signIn(a, phone, PORTAL_USER);
    const mine = await signIn(b, desk, PORTAL_USER);
    const confirm = await desk.get(`${b.url}/passwords/revoke-all`);
    await desk.post(`${b.url}/passwords/revoke-all`, { _csrf: WebClient.field(confirm.body, '_csrf') });
    assert.equal(await a.app.webSessions.get(other), null);
    assert.notEqual(await b.app.webSessions.get(mine), null);
    assert.equal((await desk.get(`${b.url}/passwords`)).status, 200);
  });
});
