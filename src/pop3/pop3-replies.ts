import type { AuthFailureReason } from '../core/authenticator.js';
import type { UpstreamFailureKind } from '../core/ports/upstream-failure.js';

const FAILED = '-ERR [AUTH] Authentication failed.';
// RFC 2449 §8.1.1: not allowed to log in again until a delay has passed.
const DELAYED = '-ERR [LOGIN-DELAY] Too many attempts, try again later.';
const TEMPORARY = '-ERR [SYS/TEMP] Service temporarily unavailable, try again later.';

/**
 * The one table from a login outcome to the POP3 reply, with the response codes of RFC 3206 (AUTH, SYS/TEMP,
 * SYS/PERM) and RFC 2449 (IN-USE, LOGIN-DELAY). Every reason of the authenticator and every kind of upstream
 * failure has a reply, or this does not compile. Replies are generic; why goes to the log and the audit record.
 */
export const POP3_LOGIN_REPLIES: { refused: Record<AuthFailureReason, string>; upstream: Record<UpstreamFailureKind, string> } = {
  refused: {
    'invalid-credentials': FAILED,
    revoked: FAILED,
    expired: FAILED,
    disabled: FAILED,
    'scope-denied': FAILED,
    'network-denied': FAILED,
    'rate-limited': DELAYED,
    'user-locked': DELAYED,
    unavailable: TEMPORARY,
  },
  // The app password was right; the mailbox could not be opened upstream.
  upstream: {
    'token-unavailable': TEMPORARY,
    // RFC 3206 §4: not the user's credentials but a lasting condition (POP turned off for the mailbox, the
    // app's permission missing): the user should ask an administrator rather than retype the password.
    'login-refused': '-ERR [SYS/PERM] The mailbox cannot be opened; ask your administrator.',
    'login-deferred': TEMPORARY,
    busy: '-ERR [IN-USE] The mailbox is in use by another session, try again later.',
    unreachable: TEMPORARY,
    lost: TEMPORARY,
  },
};

/** Replies passgate gives itself before login. After login the upstream speaks; passgate adds nothing. */
export const POP3_REPLIES = {
  greeting: '+OK passgate ready.',
  capabilityList: '+OK Capability list follows',
  mechanismList: '+OK Mechanisms follow',
  noop: '+OK',
  userAccepted: '+OK Send PASS.',
  loggedIn: '+OK Logged in.',
  quit: '+OK passgate signing off.',
  beginTls: '+OK Begin TLS negotiation.',
  saslContinue: '+ ',
  // RFC 2595 §4: USER, PASS and AUTH wait for TLS, except on a plaintext listener from a listed network.
  privacyRequired: '-ERR [AUTH] Log in after STLS.',
  plaintextRefused: '-ERR [AUTH] Logins without TLS are not accepted from this network.',
  passWithoutUser: '-ERR Send USER first.',
  tlsActive: '-ERR TLS is already active.',
  unsupportedMechanism: '-ERR Unsupported authentication mechanism.',
  cancelled: '-ERR Authentication cancelled.',
  badSyntax: '-ERR Syntax error.',
  notBeforeLogin: '-ERR Command not valid before login.',
  apopUnsupported: '-ERR APOP is not supported; use USER/PASS or AUTH PLAIN.',
  tooManyFailures: '-ERR [AUTH] Too many failed logins.',
  tooManyCommands: '-ERR Too many commands before login.',
  lineTooLong: '-ERR Line too long.',
  loginTimeout: '-ERR Autologout; no login in time.',
  internalError: '-ERR [SYS/TEMP] Internal error.',
  shutdown: '-ERR [SYS/TEMP] Server shutting down.',
  // Instead of the greeting (RFC 1939 §4: a -ERR greeting refuses the connection).
  tooManyConnections: '-ERR [SYS/TEMP] Too many connections, try again later.',
  tooManyConnectionsFromIp: '-ERR [SYS/TEMP] Too many connections from your address.',
} as const;
