import type { AuditReason } from '../core/audit-log.js';
import type { GraphOutcome } from '../core/ports/graph-outcome.js';
import { replyText, type UpstreamFailureKind, type UpstreamReply } from '../core/ports/upstream-failure.js';

export interface SmtpReplySpec {
  code: number;
  /** Enhanced status code and text (RFC 3463), sent as given: passgate writes enhanced codes itself. */
  text: string;
}

const INVALID: SmtpReplySpec = { code: 535, text: '5.7.8 Authentication credentials invalid' };
const TEMPORARY: SmtpReplySpec = { code: 454, text: '4.7.0 Temporary authentication failure, try again later' };

/**
 * The one table from a login outcome to the SMTP reply (RFC 4954 §6). Every reason has a reply, or this does not
 * compile. Replies are generic on purpose: why an attempt failed goes to the log and the audit record, never to
 * the client (an unknown user, a wrong password and a revoked one all read the same).
 */
export const AUTH_REPLIES: Record<AuditReason, SmtpReplySpec> = {
  ok: { code: 235, text: '2.7.0 Authentication successful' },
  'invalid-credentials': INVALID,
  revoked: INVALID,
  expired: INVALID,
  disabled: INVALID,
  'scope-denied': INVALID,
  'network-denied': INVALID,
  'upstream-rejected': INVALID,
  'rate-limited': TEMPORARY,
  'user-locked': TEMPORARY,
  unavailable: TEMPORARY,
  'upstream-token-failed': TEMPORARY,
};

/** Replies passgate gives itself outside AUTH; upstream verdicts on MAIL, RCPT and DATA pass through unchanged. */
export const SMTP_REPLIES = {
  encryptionRequired: { code: 538, text: '5.7.11 Encryption required for requested authentication mechanism' },
  tooManyFailures: { code: 421, text: '4.7.0 Too many failed logins, closing connection' },
  // Operator problems upstream (issue 18): each kind its own enhanced code or text, so a device's error log and
  // the admin can tell them apart (RFC 3463: X.4.1 no answer from host, X.4.2 bad connection, X.4.5 congestion).
  upstreamUnavailable: { code: 451, text: '4.4.1 Upstream mail server unavailable, try again later' },
  upstreamUnreachable: { code: 451, text: '4.4.1 Upstream mail server unreachable, try again later' },
  upstreamLost: { code: 451, text: '4.4.2 Connection to the upstream mail server lost, try again later' },
  upstreamBusy: { code: 451, text: '4.4.5 Upstream mail server busy, try again later' },
  upstreamDeferredLogin: { code: 454, text: '4.7.0 Upstream mail server could not check the login now, try again later' },
  tokenUnavailable: { code: 454, text: '4.7.0 Temporary authentication failure upstream: no access token for the mailbox, try again later' },
  // RFC 4954 §6: 535 is the AUTH failure; X.7.0 (not the X.7.8 of a wrong password): the password was right and
  // the upstream refused the mailbox (SMTP AUTH off for it, no permission for passgate's app), for the admin to fix.
  mailboxRefusedUpstream: { code: 535, text: '5.7.0 Mailbox refused by the upstream mail service, ask your administrator' },
  upstreamFailedDuringData: { code: 451, text: '4.4.2 Upstream connection lost before it confirmed the message, try again' },
  senderDenied: { code: 550, text: '5.7.1 Sender address not allowed for this login' },
  // Issue 17: answered after the client's final "." (the From header is read as the message streams).
  fromHeaderDenied: { code: 550, text: '5.7.1 From header address not allowed for this login, message not relayed' },
  recipientDenied: { code: 550, text: '5.7.1 Recipient domain not allowed for this login' },
  messageTooBig: { code: 552, text: '5.3.4 Message too big for this login' },
  // Security (issue 17): refusals decided on the message itself, answered after the client's final ".".
  nulInMessage: { code: 554, text: '5.6.0 Message contains NUL characters, not relayed' },
  loginRevokedDuringMessage: { code: 421, text: '4.7.0 Authentication no longer valid, message not relayed, closing connection' },
  loginRevoked: { code: 421, text: '4.7.0 Authentication no longer valid, closing connection' },
  messageRateExceeded: { code: 451, text: '4.7.1 Message rate limit reached for this login, try again later' },
  shuttingDown: { code: 421, text: '4.3.2 Service shutting down, try again later' },
  internal: { code: 451, text: '4.3.0 Temporary internal error, try again later' },
  loginNoLongerValid: { code: 530, text: '5.7.0 Authentication required, closing connection' },
  authInternal: { code: 454, text: '4.7.0 Temporary authentication failure, try again later' },
  // Greetings instead of 220 (RFC 5321 §3.1: 421 when the service is not available); the connection then closes.
  tooManyConnections: { code: 421, text: '4.7.0 Too many connections, try again later' },
  tooManyConnectionsFromIp: { code: 421, text: '4.7.0 Too many connections from your address, try again later' },
  loginTimeout: { code: 421, text: '4.4.2 No login in time, closing connection' },
} satisfies Record<string, SmtpReplySpec>;

/**
 * An upstream failure at AUTH, after the app password was accepted: every kind its own reply (issue 18), so a token
 * problem, an unreachable upstream and a mailbox the upstream refuses read differently on the device. Only a right
 * password gets here; a wrong one is always AUTH_REPLIES['invalid-credentials'].
 */
export const UPSTREAM_LOGIN_REPLIES: Record<UpstreamFailureKind, SmtpReplySpec> = {
  'token-unavailable': SMTP_REPLIES.tokenUnavailable,
  'login-refused': SMTP_REPLIES.mailboxRefusedUpstream,
  'login-deferred': SMTP_REPLIES.upstreamDeferredLogin,
  busy: SMTP_REPLIES.upstreamBusy,
  unreachable: SMTP_REPLIES.upstreamUnreachable,
  lost: SMTP_REPLIES.upstreamLost,
};

/**
 * An upstream failure outside AUTH (at MAIL, when a session is needed): every kind of the one vocabulary has a
 * reply. At AUTH, UPSTREAM_LOGIN_REPLIES answers.
 */
export const UPSTREAM_REPLIES: Record<UpstreamFailureKind, SmtpReplySpec> = {
  'token-unavailable': SMTP_REPLIES.tokenUnavailable,
  'login-refused': SMTP_REPLIES.tokenUnavailable,
  'login-deferred': SMTP_REPLIES.upstreamDeferredLogin,
  busy: SMTP_REPLIES.upstreamBusy,
  unreachable: SMTP_REPLIES.upstreamUnreachable,
  lost: SMTP_REPLIES.upstreamLost,
};

/**
 * Issue 20: the Graph transport's verdict on a message (core/ports/graph-outcome.ts), the client's reply after its
 * final ".". The transport appends Graph's error code and request-id (for Microsoft support) in parentheses, and for
 * a throttle the seconds to wait. Permanent (5xx) only where trying again cannot help before an admin acts;
 * `passgate doctor` explains each in plain words (doctor/microsoft-failures.ts, docs/troubleshooting.md).
 */
export const GRAPH_REPLIES: Record<GraphOutcome, SmtpReplySpec> = {
  sent: { code: 250, text: '2.0.0 OK, accepted by Microsoft Graph' },
  // 5.7.60 is what Exchange answers over SMTP for the same refusal (SendAsDenied).
  'send-as-denied': { code: 550, text: '5.7.60 Microsoft Graph refused the From address: the mailbox may not send as it' },
  'mailbox-not-enabled': { code: 550, text: '5.7.0 Microsoft Graph refused the mailbox: it has no Exchange Online mailbox or REST access is off, ask your administrator' },
  'mailbox-not-found': { code: 550, text: '5.1.0 Microsoft Graph does not know the mailbox, ask your administrator' },
  'scope-denied': { code: 550, text: "5.7.0 Microsoft Graph refused the mailbox: passgate's application may not send as it (application access policy or RBAC scope), ask your administrator" },
  'access-denied': { code: 550, text: "5.7.0 Microsoft Graph refused passgate's application: Mail.Send permission or admin consent missing, ask your administrator" },
  'token-refused': { code: 454, text: '4.7.0 Microsoft Graph refused the access token for the mailbox, try again later' },
  'too-big': { code: 552, text: '5.3.4 Message too big for Microsoft Graph' },
  'quota-exceeded': { code: 452, text: '4.2.2 Mailbox quota exceeded at Microsoft Graph, try again later' },
  'invalid-message': { code: 554, text: '5.6.0 Microsoft Graph refused the message' },
  // Graph sends to the header's recipients: one not given in RCPT TO would get a copy the client did not ask for.
  'header-recipient-not-in-envelope': { code: 554, text: '5.5.4 A To, Cc or Bcc header address is not among the RCPT TO recipients; Microsoft Graph would send it a copy, not sent' },
  throttled: { code: 451, text: '4.7.0 Microsoft Graph is throttling the mailbox, try again later' },
  'budget-spent': { code: 451, text: "4.7.0 Microsoft Graph's request limit for the mailbox is spent (10,000 in 10 minutes), try again later" },
  busy: { code: 451, text: '4.4.5 Microsoft Graph request slots for the mailbox are busy, try again later' },
  unavailable: { code: 451, text: '4.4.1 Microsoft Graph unavailable before it accepted the message, try again later' },
};

/** The upstream's own verdict on MAIL, RCPT or DATA, passed to the client unchanged: code, enhanced code, text. */
export function upstreamReplyError(reply: UpstreamReply): Error & { responseCode: number } {
  return Object.assign(new Error(replyText(reply)), { responseCode: reply.code });
}

/**
 * A submission passgate holds back after the upstream's continuous refusals (core/continuous-error-throttle.ts):
 * the upstream's own code and enhanced code, and a text that says it is passgate refusing, and why.
 */
export function continuousErrorReply(refusal: { code: number; enhanced: string }, remainingMs: number): SmtpReplySpec {
  const minutes = Math.max(1, Math.ceil(remainingMs / 60_000));
  return {
    code: refusal.code,
    text: `${refusal.enhanced} Refused by passgate, not sent upstream: the upstream kept refusing this sender and recipient with ${refusal.enhanced}; held back for ${minutes} min to protect the mailbox from Exchange Online's continuous-error throttling`,
  };
}

/** An Error that smtp-server turns into this reply (`responseCode` + message). */
export function smtpError(reply: SmtpReplySpec): Error & { responseCode: number } {
  return Object.assign(new Error(reply.text), { responseCode: reply.code });
}
