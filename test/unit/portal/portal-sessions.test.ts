import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { webSessionKey, type WebSession, type WebSessionStore } from '../../../src/core/web-session-store.js';
import { PortalSessions } from '../../../src/portal/portal-sessions.js';

/** The WebSessionStore contract in memory, on the test's clock (the real stores have their own tests). */
class MemorySessions implements WebSessionStore {
  readonly records = new Map<string, { session: WebSession; until: number }>();
  constructor(private readonly now: () => number) {}
  async get(id: string) {
    const r = this.records.get(webSessionKey(id));
    return r && r.until > this.now() ? structuredClone(r.session) : null;
  }
  async set(id: string, session: WebSession, ttlMs: number) {
    this.records.set(webSessionKey(id), { session: structuredClone(session), until: this.now() + ttlMs });
  }
  async destroy(id: string) {
    this.records.delete(webSessionKey(id));
  }
  async destroyAllFor(username: string) {
    let n = 0;
    for (const [key, r] of this.records) if (r.session.username === username && this.records.delete(key)) n++;
    return n;
  }
}

const ALICE = { username: 'alice@example.com', role: 'user' as const, mailboxes: ['alice@example.com'], authTime: 1, amr: ['pwd', 'mfa'] };
const MINUTE = 60_000;

describe('PortalSessions', () => {
  const setup = () => {
    let now = 1_000_000;
    const clock = () => now;
    const store = new MemorySessions(clock);
    const sessions = new PortalSessions(store, clock, { sessionMs: 60 * MINUTE, idleMs: 10 * MINUTE });
    return { store, sessions, advance: (ms: number) => (now += ms) };
  };

  it('keeps a session alive while it is used, and ends it after the idle time', async () => {
    const { sessions, advance } = setup();
    const id = await sessions.create(ALICE);
    for (let i = 0; i < 5; i++) {
      advance(9 * MINUTE);
      assert.equal((await sessions.load(id))?.session.username, ALICE.username, `still in after ${(i + 1) * 9} minutes of use`);
    }
    advance(11 * MINUTE);
    assert.equal(await sessions.load(id), null);
  });

  it('ends a session session_minutes after sign-in however busy it is', async () => {
    const { sessions, advance } = setup();
    const id = await sessions.create(ALICE);
    for (let i = 0; i < 6; i++) {
      advance(9 * MINUTE);
      await sessions.load(id);
    }
    advance(7 * MINUTE); // 61 minutes after sign-in
    assert.equal(await sessions.load(id), null);
  });

  it('gives each session a new random id with its own CSRF secret, keyed by a hash in the store', async () => {
    const { store, sessions } = setup();
    const a = await sessions.create(ALICE);
    const b = await sessions.create(ALICE);
    assert.notEqual(a, b);
    const [la, lb] = [await sessions.load(a), await sessions.load(b)];
    assert.notEqual(la!.csrf, lb!.csrf);
    assert.ok(![...store.records.keys()].includes(a), 'the store never holds the cookie value');
  });

  it('a started sign-in is used once, and is never a signed-in session', async () => {
    const { sessions } = setup();
    const pending = { state: 's', nonce: 'n', codeVerifier: 'v', maxAge: null, returnTo: '/passwords' };
    const id = await sessions.startSignIn(pending);
    assert.equal(await sessions.load(id), null, 'not a session to act with');
    assert.deepEqual(await sessions.takeSignIn(id), pending);
    assert.equal(await sessions.takeSignIn(id), null, 'a replayed callback finds nothing');
  });

  it('revoke all ends every other session of the person and keeps the one asking', async () => {
    const { sessions } = setup();
    const phone = await sessions.create(ALICE);
    const desk = await sessions.create(ALICE);
    await sessions.destroyAllFor(ALICE.username, await sessions.load(desk));
    assert.equal(await sessions.load(phone), null);
    assert.notEqual(await sessions.load(desk), null);
  });
});
