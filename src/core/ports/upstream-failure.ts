import type { AuditReason } from '../audit-log.js';
import { GatewayError } from '../gateway-error.js';
import { TokenError } from '../token-provider.js';

/**
 * One reply of an upstream, as it gave it: the SMTP shape (RFC 5321 code, RFC 3463 enhanced code, text lines),
 * which submission upstreams speak. An upstream of another protocol fills `lines` with its own reply text.
 */
export interface UpstreamReply {
  code: number;
  enhanced: string | null;
  /** Text without code and enhanced code, one entry per line. */
  lines: string[];
}

/** The reply as one line of text: enhanced code (if any) and the lines joined. */
export function replyText(reply: UpstreamReply): string {
  return `${reply.enhanced ? `${reply.enhanced} ` : ''}${reply.lines.join(' ')}`.trim();
}

/**
 * What went wrong upstream, one vocabulary for every transport and protocol:
 *  - token-unavailable: no access token for the mailbox (the token provider's TokenError is the cause);
 *  - login-refused: the upstream refused the mailbox's token (SMTP `535 5.7.3`, IMAP `NO AUTHENTICATE failed.`);
 *  - login-deferred: the upstream could not check the login now (RFC 4954 §6: a 4xx to AUTH);
 *  - busy: no session for the mailbox freed up within the wait (the per-mailbox connection cap);
 *  - unreachable: no connection, no greeting, TLS or EHLO refused, or no answer in time while opening;
 *  - lost: an open session broke (closed, timed out, spoke nonsense) before a reply.
 */
export const UPSTREAM_FAILURE_KINDS = ['token-unavailable', 'login-refused', 'login-deferred', 'busy', 'unreachable', 'lost'] as const;
export type UpstreamFailureKind = (typeof UPSTREAM_FAILURE_KINDS)[number];

/**
 * An upstream failure: its kind, whether trying again later may help, and the upstream's own reply where it gave
 * one. Upstream implementations throw only this (core/ports/submission-upstream.ts, mailbox-upstream.ts); each
 * protocol's reply table maps the kind to what its clients see.
 */
export class UpstreamError extends GatewayError {
  readonly kind: UpstreamFailureKind;
  readonly temporary: boolean;
  readonly reply: UpstreamReply | null;

  constructor(kind: UpstreamFailureKind, message: string, options: { reply?: UpstreamReply | null; temporary?: boolean; cause?: unknown } = {}) {
    super('PG_UPSTREAM_FAILED', message, options.cause === undefined ? undefined : { cause: options.cause });
    this.name = 'UpstreamError';
    this.kind = kind;
    this.reply = options.reply ?? null;
    // Only a refusal of the token is final; a token failure is final when the provider's is (config, grant lost).
    this.temporary = options.temporary ?? kind !== 'login-refused';
  }
}

/**
 * The one classification of whatever an upstream call threw. Upstream implementations throw UpstreamError; a
 * TokenError (no token) becomes `token-unavailable` with the same message; anything else is a bug below the seam
 * and reads as `lost` (temporary), so the client is told to try again rather than given a verdict.
 */
export function upstreamFailure(error: unknown): UpstreamError {
  if (error instanceof UpstreamError) return error;
  if (error instanceof TokenError) return new UpstreamError('token-unavailable', error.message, { temporary: error.kind === 'temporary', cause: error });
  return new UpstreamError('lost', (error as Error)?.message ?? String(error), { cause: error });
}

/** The audit record's reason for each kind (the same for every protocol). */
export const UPSTREAM_AUDIT_REASONS = {
  'token-unavailable': 'upstream-token-failed',
  'login-refused': 'upstream-rejected',
  'login-deferred': 'unavailable',
  busy: 'unavailable',
  unreachable: 'unavailable',
  lost: 'unavailable',
} as const satisfies Record<UpstreamFailureKind, AuditReason>;
export type UpstreamAuditReason = (typeof UPSTREAM_AUDIT_REASONS)[UpstreamFailureKind];
