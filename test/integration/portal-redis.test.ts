import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import { Redis } from 'ioredis';
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

describe('portal rate limits on Redis: counted once for every instance', () => {
  let redis: TestRedis;
  let a: PortalHarness;
  let b: PortalHarness;

  before(async () => {
    redis = await startRedis();
    const config = { redis: { url: redis.url, key_prefix: redis.prefix } };
    const portal = { sign_in_per_minute: 3 };
    [a, b] = await Promise.all([startPortalHarness({ config, portal }), startPortalHarness({ config, portal })]);
  });
  after(async () => {
    await Promise.all([a?.close(), b?.close()]);
    await redis?.close();
  });

  it('sign-in starts from one address, spread over two instances, meet one limit (sign_in_per_minute)', async () => {
    const start = async (h: PortalHarness) => (await new WebClient().get(`${h.url}/auth/login`, { follow: false })).status;
    const statuses = [await start(a), await start(b), await start(a), await start(b), await start(a)];
    assert.deepEqual(
      statuses.map((s) => (s === 429 ? 429 : 'let in')),
      ['let in', 'let in', 'let in', 429, 429],
      `statuses ${statuses.join(', ')}: 3 per minute in all, not 3 per instance`,
    );
    const client = new Redis(redis.url, { lazyConnect: true });
    try {
      await client.connect();
      assert.ok((await client.keys(`${redis.prefix}portal-rl:*`)).length > 0, 'the count is in Redis');
    } finally {
      client.disconnect();
    }
  });
});
