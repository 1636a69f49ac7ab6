import { createHash } from 'node:crypto';

/**
 * A signed-in portal session, held server-side (the cookie carries only a random id). `data` is the portal's own
 * (a CSRF secret, a pending OpenID Connect state): never a password, which must not be in a session record.
 */
export interface WebSession {
  /** The account's lower-case mail address. */
  username: string;
  role: 'admin' | 'user';
  /** Mailboxes the user may create passwords for: their own first, then those the config grants them. */
  mailboxes: string[];
  /** When the provider last authenticated the person (epoch seconds, the `auth_time` claim). */
  authTime: number;
  /** How (the `amr` claim: `pwd`, `mfa`, ...). */
  amr: string[];
  /** Epoch ms. */
  createdAt: number;
  data: Record<string, unknown>;
}

/**
 * Port: where portal sessions live, so several instances share them: SQLite (the embedded store) or Redis. Keyed
 * by `webSessionKey(id)`, a SHA-256 of the cookie's id, so a dump of the store is not a set of live cookies.
 * Expired sessions read as absent. Infrastructure failures throw GatewayError('PG_STORE_UNAVAILABLE').
 */
export interface WebSessionStore {
  get(id: string): Promise<WebSession | null>;
  /** Creates or replaces the session; it expires `ttlMs` from now. */
  set(id: string, session: WebSession, ttlMs: number): Promise<void>;
  destroy(id: string): Promise<void>;
  /** Signs a user out everywhere (revoke-all, a user the provider no longer vouches for); returns how many went. */
  destroyAllFor(username: string): Promise<number>;
}

/** What the stores key a session by: base64url SHA-256 of the cookie's id. */
export function webSessionKey(id: string): string {
  return createHash('sha256').update(id).digest('base64url');
}
