import type { AuditReason } from '../core/audit-log.js';
import type { UpstreamFailureKind } from '../core/ports/upstream-failure.js';

const FAILED = 'NO [AUTHENTICATIONFAILED] Authentication failed.';
const TEMPORARY = 'NO [UNAVAILABLE] Temporary authentication failure, try again later.';

/**
 * The one table from a login outcome to the tagged IMAP reply (response codes from RFC 5530). Every reason has a
 * reply, or this does not compile. Replies are generic; why goes to the log and the audit record. `ok` is built
 * with the upstream's capabilities (imapLoginOk).
 */
export const IMAP_LOGIN_REPLIES: Record<Exclude<AuditReason, 'ok'>, string> = {
  'invalid-credentials': FAILED,
  revoked: FAILED,
  expired: FAILED,
  disabled: FAILED,
  'scope-denied': FAILED,
  'network-denied': FAILED,
  'upstream-rejected': FAILED,
  'rate-limited': TEMPORARY,
  'user-locked': TEMPORARY,
  unavailable: 'NO [UNAVAILABLE] Service temporarily unavailable, try again later.',
  'upstream-token-failed': 'NO [UNAVAILABLE] Service temporarily unavailable, try again later.',
};

/**
 * A login whose app password was right but whose mailbox could not be opened upstream (issue 18): each kind its own
 * text, so a device's error and the admin can tell an operator problem from another. RFC 5530: UNAVAILABLE for what
 * may pass, AUTHORIZATIONFAILED when the upstream will not let passgate act for the mailbox (the identity was
 * right, the access to the mailbox is refused). A wrong password is always AUTHENTICATIONFAILED above.
 */
export const IMAP_UPSTREAM_LOGIN_REPLIES: Record<UpstreamFailureKind, string> = {
  'token-unavailable': 'NO [UNAVAILABLE] No access token for the mailbox now, try again later.',
  'login-refused': 'NO [AUTHORIZATIONFAILED] Mailbox refused by the upstream mail service, ask your administrator.',
  'login-deferred': 'NO [UNAVAILABLE] Upstream mail server could not check the login now, try again later.',
  busy: 'NO [UNAVAILABLE] Upstream mail server busy, try again later.',
  unreachable: 'NO [UNAVAILABLE] Upstream mail server unreachable, try again later.',
  lost: 'NO [UNAVAILABLE] Connection to the upstream mail server lost, try again later.',
};

/** Replies passgate gives itself before login (and the pipe's farewells after it). */
export const IMAP_REPLIES = {
  greeting: 'passgate ready.',
  capabilityDone: 'OK CAPABILITY completed.',
  noopDone: 'OK NOOP completed.',
  loggingOut: 'passgate logging out.',
  logoutDone: 'OK LOGOUT completed.',
  // RFC 2971
  id: 'ID ("name" "passgate")',
  idDone: 'OK ID completed.',
  beginTls: 'OK Begin TLS negotiation now.',
  literalReady: 'Ready for literal data',
  internalError: 'Internal error',
  protocolError: 'Protocol error',
  idle: 'Idle for too long',
  privacyRequired: 'NO [PRIVACYREQUIRED] Log in after STARTTLS.',
  plaintextRefused: 'NO [PRIVACYREQUIRED] Logins without TLS are not accepted from this network.',
  tooManyFailures: 'Too many failed logins',
  notBeforeLogin: 'BAD Command not valid before login.',
  badSyntax: 'BAD Syntax error.',
  literalTooBig: 'BAD Literal too big.',
  lineTooLong: 'Line too long',
  tooManyCommands: 'Too many commands before login',
  loginTimeout: 'Autologout; no login in time',
  starttlsDone: 'BAD TLS is already active.',
  unsupportedMechanism: 'NO [CANNOT] Unsupported authentication mechanism.',
  cancelled: 'BAD Authentication cancelled.',
  revoked: 'Session ended: the app password was revoked or turned off',
  expired: 'Session ended: the app password expired',
  shutdown: 'Server shutting down',
  // Greetings instead of `* OK` (RFC 3501 §7.1.5: BYE as the greeting refuses the connection).
  tooManyConnections: 'Too many connections, try again later',
  tooManyConnectionsFromIp: 'Too many connections from your address',
} as const;

/** Capabilities passgate cannot honour after login: the login and TLS ones are behind us. */
const NOT_AFTER_LOGIN = /^(STARTTLS|LOGINDISABLED|AUTH=.*|SASL-IR|LOGIN-REFERRALS)$/i;

export function postLoginCapabilities(upstream: readonly string[]): string[] {
  return upstream.filter((c) => !NOT_AFTER_LOGIN.test(c));
}

export function imapLoginOk(upstream: readonly string[]): string {
  return `OK [CAPABILITY ${postLoginCapabilities(upstream).join(' ')}] Logged in.`;
}
