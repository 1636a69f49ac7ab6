import { actsForEveryone, type Actor } from '../core/actor.js';
import { normalizeUsername } from '../core/app-password-record.js';
import type { AuditAction, AuditEvent, AuditLog, AuditReason } from '../core/audit-log.js';
import { GatewayError } from '../core/gateway-error.js';
import type { Protocol } from '../core/protocol.js';

export interface SignInLogQuery {
  username?: string | undefined;
  appPasswordId?: string | undefined;
  reason?: AuditReason | undefined;
  protocol?: Protocol | undefined;
  /** Only this kind of event (default: every kind, changes to passwords included). */
  action?: AuditAction | undefined;
  /** Epoch ms, inclusive. */
  since?: number | undefined;
  /** Epoch ms, exclusive. */
  until?: number | undefined;
  limit: number;
}

/** The most events one query returns (a page of a portal table, an export of a day). */
export const SIGN_IN_LOG_MAX_LIMIT = 1000;

/** Plain words for people: what each reason means, as the portal's sign-in log shows it. */
const REASON_WORDS: Record<AuditReason, string> = {
  ok: 'Signed in',
  'invalid-credentials': 'Wrong password',
  revoked: 'Revoked',
  expired: 'Expired',
  disabled: 'Turned off',
  'scope-denied': 'Not allowed for this kind of app (IMAP or SMTP)',
  'network-denied': 'Not allowed from this network',
  'rate-limited': 'Too many attempts: blocked for a while',
  'user-locked': 'Account locked after too many wrong passwords',
  'upstream-token-failed': 'Could not get access to the mailbox from the provider',
  'upstream-rejected': 'The mail provider refused the mailbox',
  unavailable: 'Service unavailable: try again later',
};

export function describeReason(reason: AuditReason): string {
  return REASON_WORDS[reason];
}

/**
 * The sign-in (audit) log as the portal and the CLI read it: newest first; a user sees only the events of their
 * own account (whatever the filter says), an admin and the operator everyone's.
 */
export class SignInLog {
  constructor(
    private readonly audit: AuditLog,
    private readonly clock: () => number = Date.now,
  ) {}

  /**
   * Records that a person signed in to the portal (their address, user agent, role and whether MFA was used):
   * sessions with the company account belong in the same log as logins with app passwords.
   */
  async recordPortalSignIn(actor: Actor, details: { mfa: boolean; reauthenticated: boolean }): Promise<void> {
    const agent = actor.userAgent === null ? '' : `, agent "${actor.userAgent.slice(0, 200)}"`;
    await this.audit.append({
      at: this.clock(),
      action: 'portal.sign-in',
      protocol: null,
      username: actor.id,
      clientIp: actor.ip,
      appPasswordId: null,
      appPasswordName: null,
      reason: 'ok',
      detail: `portal ${actor.role}${details.mfa ? ', with MFA' : ''}${details.reauthenticated ? ', signed in again to create a password' : ''}${agent}`,
    });
  }

  describeReason(reason: AuditReason): string {
    return describeReason(reason);
  }

  async query(actor: Actor, q: SignInLogQuery): Promise<AuditEvent[]> {
    if (!Number.isInteger(q.limit) || q.limit <= 0 || q.limit > SIGN_IN_LOG_MAX_LIMIT) {
      throw new GatewayError('PG_INVALID_INPUT', `the limit must be a whole number from 1 to ${SIGN_IN_LOG_MAX_LIMIT}`);
    }
    const username = !actsForEveryone(actor) ? actor.id : q.username === undefined ? undefined : normalizeUsername(q.username);
    const query = {
      limit: q.limit,
      ...(username !== undefined ? { username } : {}),
      ...(q.appPasswordId !== undefined ? { appPasswordId: q.appPasswordId.trim() } : {}),
      ...(q.reason !== undefined ? { reason: q.reason } : {}),
      ...(q.protocol !== undefined ? { protocol: q.protocol } : {}),
      ...(q.action !== undefined ? { action: q.action } : {}),
      ...(q.since !== undefined ? { since: q.since } : {}),
      ...(q.until !== undefined ? { until: q.until } : {}),
    };
    return this.audit.query(query);
  }
}
