import type { Protocol } from './protocol.js';

/** Why an attempt ended as it did: a closed set, so every protocol can map each one to a reply. */
export const AUDIT_REASONS = [
  'ok',
  'invalid-credentials',
  'revoked',
  'expired',
  /** The right password of an app password that is turned off (answered like a wrong one). */
  'disabled',
  'scope-denied',
  'network-denied',
  'rate-limited',
  'user-locked',
  'upstream-token-failed',
  'upstream-rejected',
  'unavailable',
] as const;
export type AuditReason = (typeof AUDIT_REASONS)[number];

/**
 * What was attempted: a login, an operator's change, or a token event (a mailbox's grant lost). `store.export` and
 * `store.import` concern the whole store: their username is `(store)`.
 */
export const AUDIT_ACTIONS = [
  'login',
  /** A person signed in to the web portal (with their company account, not an app password). */
  'portal.sign-in',
  'app-password.create',
  'app-password.revoke',
  'app-password.revoke-all',
  'app-password.turn-off',
  'app-password.turn-on',
  'app-password.edit',
  'lockout.unlock',
  'oauth.connect',
  'oauth.token',
  'store.export',
  'store.import',
] as const;
export type AuditAction = (typeof AUDIT_ACTIONS)[number];

export interface AuditEvent {
  at: number;
  action: AuditAction;
  /** Protocol of a login; null for operator actions. */
  protocol: Protocol | null;
  username: string;
  clientIp: string | null;
  appPasswordId: string | null;
  appPasswordName: string | null;
  reason: AuditReason;
  /** Free text for operators (never a secret): the upstream's refusal, which limit blocked, who acted. */
  detail: string | null;
}

export interface AuditQuery {
  username?: string;
  appPasswordId?: string;
  reason?: AuditReason;
  protocol?: Protocol;
  /** Epoch ms; only events at or after it. */
  since?: number;
  /** Epoch ms; only events before it. */
  until?: number;
  action?: AuditAction;
  /** Most events returned, newest first. */
  limit: number;
}

/** Does an event pass the query's filters (`since` aside)? One rule for every implementation that filters in memory. */
export function matchesAuditQuery(event: AuditEvent, q: AuditQuery): boolean {
  return (
    (q.username === undefined || event.username === q.username) &&
    (q.appPasswordId === undefined || event.appPasswordId === q.appPasswordId) &&
    (q.reason === undefined || event.reason === q.reason) &&
    (q.protocol === undefined || event.protocol === q.protocol) &&
    (q.action === undefined || event.action === q.action) &&
    (q.until === undefined || event.at < q.until)
  );
}

/** Port: the sign-in (audit) log, with bounded retention. */
export interface AuditLog {
  append(event: AuditEvent): Promise<void>;
  /** Newest first. */
  query(query: AuditQuery): Promise<AuditEvent[]>;
  /** Deletes events older than the retention window; returns how many went (may be an estimate on Redis). */
  prune(): Promise<number>;
  close(): Promise<void>;
}
