import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import { CLI_ACTOR } from '../../src/core/actor.js';
import { webSessionKey } from '../../src/core/web-session-store.js';
import { createLogger } from '../../src/observability/logger.js';
import { PORTAL_ADMIN, PORTAL_OTHER, PORTAL_OUTSIDER, PORTAL_USER, startPortalHarness, type PortalHarness } from '../helpers/portal-harness.js';
import { WebClient, type WebResponse } from '../helpers/web-client.js';

/** Through the provider's sign-in page, as a person would: start, pick the account, come back signed in. */
async function signIn(h: PortalHarness, client: WebClient, email: string, options: { mfa?: boolean; start?: string } = {}): Promise<WebResponse> {
  const page = await client.get(options.start ?? `${h.url}/auth/login`);
  assert.equal(page.status, 200, page.body);
  assert.match(page.body, /Test identity provider/);
  const action = /action="([^"]+)"/.exec(page.body)![1]!;
  return client.post(new URL(action, page.url).href, { account: email, ...(options.mfa === false ? {} : { mfa: 'on' }) });
}

const SESSION_COOKIE = '__Host-passgate';

describe('portal over HTTP: OpenID Connect sign-in, sessions, CSRF, roles', () => {
  let h: PortalHarness;
  let offsetMs = 0;
  const logs: string[] = [];

  before(async () => {
    h = await startPortalHarness({
      oidc: { require_mfa: true },
      config: { rate_limit: { pair: { max_failures: 2, block_seconds: 60, max_block_seconds: 600 } } },
      portal: { sign_in_per_minute: 40, create_per_hour: 3, idle_minutes: 30, mailbox_grants: { [PORTAL_USER]: ['scanner@example.com'] } },
      clock: () => Date.now() + offsetMs,
      logger: createLogger('info', { write: (line: string) => void logs.push(line) }),
    });
  });
  after(async () => h.close());

  it('signs a user in with code + PKCE + state + nonce, and keeps only a random id in a __Host- cookie', async () => {
    const client = new WebClient();
    const start = await client.get(`${h.url}/auth/login`, { follow: false });
    assert.equal(start.status, 303);
    const authorize = new URL(start.location!);
    assert.equal(authorize.origin, h.oidc.issuer);
    for (const param of ['state', 'nonce', 'code_challenge']) assert.ok(authorize.searchParams.get(param), param);
    assert.equal(authorize.searchParams.get('code_challenge_method'), 'S256');
    assert.equal(authorize.searchParams.get('redirect_uri'), `${h.url}/auth/callback`);

    const home = await signIn(h, new WebClient(), PORTAL_USER);
    assert.equal(home.status, 200);
    const [recorded] = await h.app.audit.query({ action: 'portal.sign-in', username: PORTAL_USER, limit: 1 });
    assert.deepEqual([recorded?.clientIp, recorded?.reason, recorded?.protocol], ['127.0.0.1', 'ok', null], 'the sign-in is in the sign-in log');
    assert.match(recorded!.detail!, /^portal user, with MFA/);
    assert.match(home.body, /<h1>My app passwords<\/h1>/);
    assert.match(home.body, new RegExp(PORTAL_USER));
    assert.doesNotMatch(home.body, /All passwords/, 'no admin navigation for a user');

    const fresh = new WebClient();
    await signIn(h, fresh, PORTAL_USER);
    const id = fresh.jar.get(h.url)!.get(SESSION_COOKIE)!;
    assert.match(id, /^[\w-]{43}$/, 'a 256-bit random id, nothing else');
    const session = await h.app.webSessions.get(id);
    assert.deepEqual([session!.username, session!.role, session!.mailboxes, session!.amr], [PORTAL_USER, 'user', [PORTAL_USER, 'scanner@example.com'], ['pwd', 'mfa']]);
    assert.notEqual(webSessionKey(id), id, 'the store keys it by a hash');
  });

  it('sets the cookie HttpOnly, Secure, SameSite=Lax; every page is no-store with a strict CSP and no inline script', async () => {
    const client = new WebClient();
    const page = await client.get(`${h.url}/auth/login`);
    const action = /action="([^"]+)"/.exec(page.body)![1]!;
    const back = await client.post(new URL(action, page.url).href, { account: PORTAL_USER, mfa: 'on' }, { follow: false });
    let response = back;
    while (response.location !== null && !response.url.startsWith(`${h.url}/auth/callback`)) response = await client.get(new URL(response.location, response.url).href, { follow: false });
    const cookie = ([] as string[]).concat(response.headers['set-cookie'] ?? []).find((c) => c.startsWith(`${SESSION_COOKIE}=`))!;
    assert.match(cookie, /HttpOnly/i);
    assert.match(cookie, /Secure/i);
    assert.match(cookie, /SameSite=Lax/i);
    assert.match(cookie, /Path=\//i);

    const list = await client.get(`${h.url}/passwords`);
    const csp = String(list.headers['content-security-policy']);
    assert.match(csp, /default-src 'none'/);
    assert.match(csp, /script-src 'self'/);
    assert.match(csp, /style-src 'self'/);
    assert.match(csp, /frame-ancestors 'none'/);
    assert.doesNotMatch(csp, /unsafe-inline|unsafe-eval/);
    assert.equal(list.headers['cache-control'], 'no-store');
    assert.doesNotMatch(list.body, /<script>|<style|style="/, 'no inline script or style');
    assert.match(String(list.headers['strict-transport-security']), /max-age=/);
  });

  it('creates a password shown once on a no-store page; it is in no URL, session record, log or audit record', async () => {
    const client = new WebClient();
    await signIn(h, client, PORTAL_USER);
    const form = await client.get(`${h.url}/passwords/new`);
    assert.equal(form.status, 200);
    assert.match(form.body, /<label for="name">Name<\/label>/);
    // Every scope is offered; sending and reading are ticked, POP3 is chosen only when a device needs it.
    assert.deepEqual([...form.body.matchAll(/name="scopes" value="(\w+)"( checked)?/g)].map((m) => `${m[1]}${m[2] ?? ''}`), ['smtp checked', 'imap checked', 'pop3']);
    const created = await client.post(`${h.url}/passwords`, { _csrf: WebClient.field(form.body, '_csrf'), name: 'Scanner, 3rd floor', mailbox: PORTAL_USER, scopes: ['smtp', 'imap'], expiry: '90d' });
    assert.equal(created.status, 200);
    assert.equal(created.headers['cache-control'], 'no-store');
    const password = /<code id="app-password">([^<]+)<\/code>/.exec(created.body)![1]!;
    assert.match(created.body, /Device setup/);
    assert.match(created.body, /mail\.example\.com/, 'the setup sheet names the configured host');
    const [view] = await h.app.admin.appPasswords.list(CLI_ACTOR, { username: PORTAL_USER, search: 'Scanner' });
    assert.equal(view!.name, 'Scanner, 3rd floor');
    assert.ok(view!.expiresAt! > Date.now() + 89 * 86_400_000);
    const verified = await h.app.verifier.verify(PORTAL_USER, password);
    assert.equal(verified.ok, true, 'the shown password is the stored one');

    const bare = password.replace(/[^a-z0-9]/gi, '');
    const mentions = (text: string) => text.includes(password) || text.includes(bare);
    assert.ok(!client.visited.some(mentions), 'never in a URL');
    const id = client.jar.get(h.url)!.get(SESSION_COOKIE)!;
    assert.ok(!mentions(JSON.stringify(await h.app.webSessions.get(id))), 'never in the session record');
    assert.ok(!mentions(JSON.stringify(await h.app.audit.query({ limit: 1000 }))), 'never in the audit log');
    assert.ok(!mentions(logs.join('')), 'never in a log line');
    const [audit] = await h.app.audit.query({ username: PORTAL_USER, action: 'app-password.create', limit: 1 });
    assert.match(audit!.detail!, /by alice@example\.com \(user\), agent "passgate-test-client"/);
    assert.equal(audit!.clientIp, '127.0.0.1');
  });

  it('refuses a forged POST without the CSRF token (or with another session\'s)', async () => {
    const { view } = await h.app.admin.appPasswords.create(CLI_ACTOR, { username: PORTAL_USER, name: 'Target' });
    const victim = new WebClient();
    await signIn(h, victim, PORTAL_USER);
    const forged = await victim.post(`${h.url}/passwords/${view.id}/turn-off`, { back: '/passwords' });
    assert.equal(forged.status, 403);
    assert.match(forged.body, /Form expired/);
    const attacker = new WebClient();
    await signIn(h, attacker, PORTAL_OTHER);
    const theirs = WebClient.field((await attacker.get(`${h.url}/passwords`)).body, '_csrf');
    assert.equal((await victim.post(`${h.url}/passwords/${view.id}/turn-off`, { _csrf: theirs })).status, 403);
    assert.equal((await h.app.admin.appPasswords.show(CLI_ACTOR, view.id)).disabledAt, null, 'nothing changed');
    const token = WebClient.field((await victim.get(`${h.url}/passwords`)).body, '_csrf');
    const done = await victim.post(`${h.url}/passwords/${view.id}/turn-off`, { _csrf: token, back: '/passwords' });
    assert.match(done.body, /Turned off: it is refused at sign-in/);
    assert.notEqual((await h.app.admin.appPasswords.show(CLI_ACTOR, view.id)).disabledAt, null);
  });

  it('keeps a user out of admin pages and away from another user\'s passwords', async () => {
    const { view } = await h.app.admin.appPasswords.create(CLI_ACTOR, { username: PORTAL_OTHER, name: 'Bob phone' });
    const client = new WebClient();
    await signIn(h, client, PORTAL_USER);
    for (const path of ['/admin/passwords', '/admin/sign-ins', '/admin/lockouts', '/admin/health']) {
      assert.equal((await client.get(`${h.url}${path}`)).status, 403, path);
    }
    const page = await client.get(`${h.url}/passwords`);
    assert.doesNotMatch(page.body, /Bob phone/);
    const token = WebClient.field(page.body, '_csrf');
    assert.equal((await client.post(`${h.url}/passwords/${view.id}/revoke`, { _csrf: token })).status, 404, 'answered like an unknown id');
    assert.equal((await client.get(`${h.url}/passwords/${view.id}/setup`)).status, 404);
    await client.post(`${h.url}/passwords/revoke-all`, { _csrf: token, user: PORTAL_OTHER });
    assert.equal((await h.app.admin.appPasswords.show(CLI_ACTOR, view.id)).revokedAt, null, 'revoke-all of someone else did nothing to theirs');
  });

  it('lets an admin see everyone and act on another user\'s password, recorded with the admin as actor', async () => {
    const { view } = await h.app.admin.appPasswords.create(CLI_ACTOR, { username: PORTAL_OTHER, name: 'Bob laptop' });
    const admin = new WebClient();
    const home = await signIn(h, admin, PORTAL_ADMIN);
    assert.match(home.body, /All passwords/);
    const all = await admin.get(`${h.url}/admin/passwords?q=laptop`);
    assert.match(all.body, /Bob laptop/);
    const revoked = await admin.post(`${h.url}/passwords/${view.id}/revoke`, { _csrf: WebClient.field(all.body, '_csrf'), back: '/admin/passwords?q=laptop' });
    assert.match(revoked.url, /\/admin\/passwords\?q=laptop&done=revoked/);
    assert.notEqual((await h.app.admin.appPasswords.show(CLI_ACTOR, view.id)).revokedAt, null);
    const [audit] = await h.app.audit.query({ appPasswordId: view.id, action: 'app-password.revoke', limit: 1 });
    assert.match(audit!.detail!, /by admin@example\.com \(admin\)/);
    for (const path of ['/admin/sign-ins?user=bob%40example.com', '/admin/lockouts', '/admin/health']) assert.equal((await admin.get(`${h.url}${path}`)).status, 200, path);

    await h.app.admin.appPasswords.create(CLI_ACTOR, { username: PORTAL_OTHER, name: 'Bob tablet' });
    const confirm = await admin.get(`${h.url}/passwords/revoke-all?user=${encodeURIComponent(PORTAL_OTHER)}`);
    assert.match(confirm.body, /Revoke all app passwords of bob@example\.com\?/);
    const done = await admin.post(`${h.url}/passwords/revoke-all`, { _csrf: WebClient.field(confirm.body, '_csrf'), user: PORTAL_OTHER });
    assert.match(done.body, /All app passwords were revoked/);
    assert.ok((await h.app.admin.appPasswords.list(CLI_ACTOR, { username: PORTAL_OTHER })).every((v) => v.revokedAt !== null));
    const [revokeAll] = await h.app.audit.query({ username: PORTAL_OTHER, action: 'app-password.revoke-all', limit: 1 });
    assert.match(revokeAll!.detail!, /by admin@example\.com \(admin\)/);
  });

  it('lets an admin see a lockout and lift it, audited with the admin as actor', async () => {
    for (let n = 0; n < 2; n++) {
      await h.app.authenticator.authenticate({ username: 'victim@example.com', password: `wrong-password-${n}`, protocol: 'imap', clientIp: '192.0.2.1', secure: true });
    }
    const admin = new WebClient();
    await signIn(h, admin, PORTAL_ADMIN);
    const list = await admin.get(`${h.url}/admin/lockouts`);
    assert.match(list.body, /victim@example\.com 192\.0\.2\.1/);
    const done = await admin.post(`${h.url}/admin/lockouts/unlock`, { _csrf: WebClient.field(list.body, '_csrf'), kind: 'user-address', key: 'victim@example.com 192.0.2.1' });
    assert.match(done.body, /Unlocked\./);
    assert.match(done.body, /Nobody is locked out/);
    const [audit] = await h.app.audit.query({ action: 'lockout.unlock', limit: 1 });
    assert.match(audit!.detail!, /by admin@example\.com \(admin\).*unlocked user-address victim@example\.com 192\.0\.2\.1/);
  });

  it('shows a user the setup sheet of their own password, without the password', async () => {
    const { view, password } = await h.app.admin.appPasswords.create(CLI_ACTOR, { username: PORTAL_USER, name: 'Copier', scopes: ['smtp'] });
    const client = new WebClient();
    await signIn(h, client, PORTAL_USER);
    const sheet = await client.get(`${h.url}/passwords/${view.id}/setup`);
    assert.equal(sheet.status, 200);
    assert.match(sheet.body, /Setup sheet: Copier/);
    assert.match(sheet.body, /Outgoing mail \(SMTP\)/);
    assert.ok(!sheet.body.includes(password));
  });

  it('renames and extends a password (the password unchanged, audited); refuses it for another user\'s, a revoked one, or without CSRF', async () => {
    const { view, password } = await h.app.admin.appPasswords.create(CLI_ACTOR, { username: PORTAL_USER, name: 'Fax', scopes: ['smtp'] });
    const client = new WebClient();
    await signIn(h, client, PORTAL_USER);
    const list = await client.get(`${h.url}/passwords`);
    assert.ok(list.body.includes(`/passwords/${view.id}/edit?back=%2Fpasswords`), 'the list links to the edit page');
    const form = await client.get(`${h.url}/passwords/${view.id}/edit?back=/passwords`);
    assert.equal(form.status, 200);
    assert.match(form.body, /Rename or extend: Fax/);
    const token = WebClient.field(form.body, '_csrf');
    assert.equal((await client.post(`${h.url}/passwords/${view.id}/edit`, { name: 'Forged' })).status, 403, 'no CSRF token');
    // A name with markup is stored as text and shown escaped.
    const saved = await client.post(`${h.url}/passwords/${view.id}/edit`, { _csrf: token, name: 'Fax <b>2nd</b> floor', expiry: '30d', back: '/passwords' }, { follow: false });
    assert.equal(saved.status, 303);
    assert.equal(saved.location, '/passwords?done=edited');
    const after = await h.app.admin.appPasswords.show(CLI_ACTOR, view.id);
    assert.equal(after.name, 'Fax <b>2nd</b> floor');
    assert.ok(after.expiresAt !== null && Math.abs(after.expiresAt - (h.app.clock() + 30 * 86_400_000)) < 60_000, 'expires in 30 days');
    const shown = await client.get(`${h.url}/passwords?done=edited`);
    assert.ok(shown.body.includes('Fax &lt;b&gt;2nd&lt;/b&gt; floor') && !shown.body.includes('<b>2nd</b>'), 'escaped');
    assert.match(shown.body, /Saved\. The password itself is unchanged/);
    // The same password still verifies: the hash was not touched.
    assert.equal((await h.app.authenticator.authenticate({ username: PORTAL_USER, password, protocol: 'smtp', clientIp: '127.0.0.1', secure: true })).ok, true);
    const [edit] = await h.app.audit.query({ username: PORTAL_USER, action: 'app-password.edit', limit: 1 });
    assert.match(edit!.detail ?? '', /by alice@example\.com \(user\).*changed name, expiresAt/);
    // An empty name is refused on the page, with the form again.
    const empty = await client.post(`${h.url}/passwords/${view.id}/edit`, { _csrf: token, name: '  ', expiry: 'keep' });
    assert.equal(empty.status, 400);
    // Another user's password reads as unknown; a revoked one cannot be changed.
    const { view: bobs } = await h.app.admin.appPasswords.create(CLI_ACTOR, { username: PORTAL_OTHER, name: 'Bob fax' });
    assert.equal((await client.get(`${h.url}/passwords/${bobs.id}/edit`)).status, 404);
    assert.equal((await client.post(`${h.url}/passwords/${bobs.id}/edit`, { _csrf: token, name: 'mine', expiry: 'keep' })).status, 404);
    assert.equal((await h.app.admin.appPasswords.show(CLI_ACTOR, bobs.id)).name, 'Bob fax');
    await h.app.admin.appPasswords.revoke(CLI_ACTOR, view.id);
    const revoked = await client.post(`${h.url}/passwords/${view.id}/edit`, { _csrf: token, name: 'Back again', expiry: 'keep' });
    assert.equal(revoked.status, 400);
    assert.equal((await h.app.admin.appPasswords.show(CLI_ACTOR, view.id)).name, 'Fax <b>2nd</b> floor');
  });

  it('limits how many passwords one person creates per hour (create_per_hour)', async () => {
    const client = new WebClient();
    await signIn(h, client, PORTAL_OTHER);
    const statuses: number[] = [];
    for (let i = 0; i < 4; i++) {
      const form = await client.get(`${h.url}/passwords/new`);
      statuses.push((await client.post(`${h.url}/passwords`, { _csrf: WebClient.field(form.body, '_csrf'), name: `Device ${i}`, mailbox: PORTAL_OTHER, scopes: 'smtp', expiry: 'never' })).status);
    }
    assert.deepEqual(statuses, [200, 200, 200, 429]);
  });

  it('refuses a sign-in without MFA when require_mfa, and an account outside the allowed domains; counts each outcome', async () => {
    /** One series of the registry, e.g. passgate_portal_sign_ins_total{result="ok"}; 0 when absent. */
    const series = async (name: string) => {
      const line = (await h.app.metrics.registry.metrics()).split('\n').find((l) => l.startsWith(`${name} `));
      return line === undefined ? 0 : Number(line.slice(name.length + 1));
    };
    const names = {
      mfa: 'passgate_portal_sign_ins_total{result="mfa-required"}',
      outsider: 'passgate_portal_sign_ins_total{result="not-allowed"}',
      ok: 'passgate_portal_sign_ins_total{result="ok"}',
      csrf: 'passgate_portal_refusals_total{reason="csrf"}',
      forbidden: 'passgate_portal_refusals_total{reason="forbidden"}',
    };
    const before = Object.fromEntries(await Promise.all(Object.entries(names).map(async ([k, n]) => [k, await series(n)] as const)));
    const noMfa = await signIn(h, new WebClient(), PORTAL_USER, { mfa: false });
    assert.equal(noMfa.status, 403);
    assert.match(noMfa.body, /multi-factor/);
    const outsider = await signIn(h, new WebClient(), PORTAL_OUTSIDER);
    assert.equal(outsider.status, 403);
    assert.match(outsider.body, /not allowed to use this portal/);
    assert.ok(logs.some((l) => l.includes('portal sign-in refused') && l.includes('mfa-required')));
    // One of each of the others, made here (each test stands alone): a sign-in, a forged form, an admin page.
    const user = new WebClient();
    await signIn(h, user, PORTAL_USER);
    assert.equal((await user.post(`${h.url}/auth/logout`, { _csrf: 'forged' })).status, 403);
    assert.equal((await user.get(`${h.url}/admin/passwords`)).status, 403);
    const after = Object.fromEntries(await Promise.all(Object.entries(names).map(async ([k, n]) => [k, await series(n)] as const)));
    for (const key of Object.keys(names)) assert.equal(after[key]! - before[key]!, 1, `${names[key as keyof typeof names]}: ${before[key]} -> ${after[key]}`);
  });

  it('asks the provider to authenticate again (max_age, prompt=login) before creating, when the sign-in is old', async () => {
    const client = new WebClient();
    await signIn(h, client, PORTAL_USER);
    offsetMs = 700_000; // past reauth_max_age_seconds (600)
    try {
      const form = await client.get(`${h.url}/passwords/new`, { follow: false });
      assert.equal(form.status, 303);
      assert.equal(form.location, '/auth/login?reauth=1&return=%2Fpasswords%2Fnew');
      const start = await client.get(`${h.url}${form.location}`, { follow: false });
      const authorize = new URL(start.location!);
      assert.deepEqual([authorize.searchParams.get('max_age'), authorize.searchParams.get('prompt')], ['600', 'login']);
      const logins = h.oidc.logins.length;
      offsetMs = 0;
      const back = await signIn(h, client, PORTAL_USER, { start: start.location! });
      assert.equal(h.oidc.logins.length, logins + 1, 'the provider asked again, though its session was live');
      assert.match(back.url, /\/passwords\/new$/);
      assert.match(back.body, /Create an app password/);
    } finally {
      offsetMs = 0;
    }
  });

  it('offers the mailboxes the config grants besides the user\'s own, and no other', async () => {
    const client = new WebClient();
    await signIn(h, client, PORTAL_USER);
    const form = await client.get(`${h.url}/passwords/new`);
    assert.match(form.body, /<option value="alice@example\.com" selected>alice@example\.com<\/option><option value="scanner@example\.com">/);
    const token = WebClient.field(form.body, '_csrf');
    const shared = await client.post(`${h.url}/passwords`, { _csrf: token, name: 'Shared scanner', mailbox: 'scanner@example.com', scopes: 'smtp', expiry: 'never' });
    assert.equal(shared.status, 200);
    const [view] = await h.app.admin.appPasswords.list(CLI_ACTOR, { search: 'Shared scanner' });
    assert.deepEqual([view!.username, view!.mailbox], [PORTAL_USER, 'scanner@example.com'], 'logs in as alice, acts as the shared mailbox');
    const typed = await client.post(`${h.url}/passwords`, { _csrf: token, name: 'Not mine', mailbox: PORTAL_OTHER, scopes: 'smtp', expiry: 'never' });
    assert.equal(typed.status, 400);
    assert.match(typed.body, /Choose one of your mailboxes/);
    assert.equal((await h.app.admin.appPasswords.list(CLI_ACTOR, { search: 'Not mine' })).length, 0);
  });

  it('ends a session after idle_minutes without a request', async () => {
    const client = new WebClient();
    const page = await signIn(h, client, PORTAL_USER);
    assert.equal(page.status, 200);
    offsetMs = 31 * 60_000;
    try {
      const later = await client.get(`${h.url}/passwords`, { follow: false });
      assert.equal(later.status, 303);
      assert.match(later.location!, /^\/auth\/login/);
    } finally {
      offsetMs = 0;
    }
  });

  it('signs out: the session is gone from the store', async () => {
    const client = new WebClient();
    const page = await signIn(h, client, PORTAL_USER);
    const id = client.jar.get(h.url)!.get(SESSION_COOKIE)!;
    await client.post(`${h.url}/auth/logout`, { _csrf: WebClient.field(page.body, '_csrf') });
    assert.equal(await h.app.webSessions.get(id), null);
    const again = await client.get(`${h.url}/passwords`, { follow: false });
    assert.equal(again.status, 303);
    assert.match(again.location!, /^\/auth\/login\?return=/);
    const twice = await client.post(`${h.url}/auth/logout`, {}, { follow: false });
    assert.deepEqual([twice.status, twice.location], [303, '/'], 'signing out when already out just goes home');
  });

  it('limits sign-in starts per address (sign_in_per_minute): last, as it blocks 127.0.0.1 for a minute', async () => {
    const client = new WebClient();
    let status = 0;
    for (let i = 0; i < 41 && status !== 429; i++) status = (await client.get(`${h.url}/auth/login`, { follow: false })).status;
    assert.equal(status, 429);
  });
});
