import { randomBytes } from 'node:crypto';
import type { Clock } from '../core/clock.js';
import type { WebSession, WebSessionStore } from '../core/web-session-store.js';
import type { PendingSignIn } from './oidc-sign-in.js';
import type { PortalIdentity } from './portal-identity.js';

/** How long a started sign-in may take at the provider. */
const PENDING_SIGN_IN_MS = 10 * 60_000;
/** A session's idle clock is written back at most this often (not at every request). */
const TOUCH_EVERY_MS = 60_000;

/** A signed-in session as the portal reads it; `csrf` is the secret its forms' tokens are made from. */
export interface PortalSession {
  id: string;
  session: WebSession;
  csrf: string;
}

/**
 * Portal sessions over the WebSessionStore (SQLite or Redis, shared by every instance): a random 256-bit id is
 * all the cookie carries; a session ends `sessionMs` after sign-in or `idleMs` after its last request. A started
 * sign-in (state, nonce, PKCE verifier) is a session of its own, under another cookie, for ten minutes.
 */
export class PortalSessions {
  constructor(
    private readonly store: WebSessionStore,
    private readonly clock: Clock,
    private readonly limits: { sessionMs: number; idleMs: number },
  ) {}

  /** A new session for the person just signed in (always a new id: no session fixation). */
  async create(identity: PortalIdentity): Promise<string> {
    const id = newSessionId();
    const now = this.clock();
    const session: WebSession = { ...identity, createdAt: now, data: { csrf: randomBytes(24).toString('base64url'), seenAt: now } };
    await this.store.set(id, session, Math.min(this.limits.idleMs, this.limits.sessionMs));
    return id;
  }

  /** The live session of this id, its idle clock moved on; null when absent, ended, or not a signed-in one. */
  async load(id: string | undefined): Promise<PortalSession | null> {
    if (id === undefined || id === '') return null;
    const session = await this.store.get(id);
    if (session === null || session.username === '' || typeof session.data.csrf !== 'string') return null;
    const now = this.clock();
    const endsAt = session.createdAt + this.limits.sessionMs;
    if (now >= endsAt) {
      await this.store.destroy(id);
      return null;
    }
    const seenAt = typeof session.data.seenAt === 'number' ? session.data.seenAt : session.createdAt;
    if (now - seenAt >= TOUCH_EVERY_MS) {
      session.data = { ...session.data, seenAt: now };
      await this.store.set(id, session, Math.min(this.limits.idleMs, endsAt - now));
    }
    return { id, session, csrf: session.data.csrf as string };
  }

  destroy(id: string): Promise<void> {
    return this.store.destroy(id);
  }

  /** Every session of this person, on every instance (revoke all); `keep` stays signed in. */
  async destroyAllFor(username: string, keep: PortalSession | null): Promise<void> {
    await this.store.destroyAllFor(username);
    if (keep !== null) {
      const left = keep.session.createdAt + this.limits.sessionMs - this.clock();
      if (left > 0) await this.store.set(keep.id, keep.session, Math.min(this.limits.idleMs, left));
    }
  }

  async startSignIn(pending: PendingSignIn): Promise<string> {
    const id = newSessionId();
    await this.store.set(id, { username: '', role: 'user', mailboxes: [], authTime: 0, amr: [], createdAt: this.clock(), data: { pending } }, PENDING_SIGN_IN_MS);
    return id;
  }

  /** The started sign-in, used once: it is gone after this call. */
  async takeSignIn(id: string | undefined): Promise<PendingSignIn | null> {
    if (id === undefined || id === '') return null;
    const session = await this.store.get(id);
    if (session === null) return null;
    await this.store.destroy(id);
    const pending = session.data.pending as PendingSignIn | undefined;
    return session.username === '' && pending !== undefined ? pending : null;
  }
}

function newSessionId(): string {
  return randomBytes(32).toString('base64url');
}
