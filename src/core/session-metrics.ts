/** Why a client session ended; a closed set, so it can label a metric. */
export type SessionEnd =
  | 'client-closed'
  | 'logout'
  | 'timeout'
  | 'login-timeout'
  | 'too-many-failures'
  | 'too-many-commands'
  | 'protocol-error'
  | 'tls-failed'
  | 'login-no-longer-valid'
  | 'server-closed'
  | 'upstream-closed'
  | 'idle'
  | 'revoked'
  | 'expired'
  | 'shutdown'
  | 'error';

/**
 * Port: a client session's life, counted the same way for SMTP and IMAP (observability/metrics.ts binds the
 * protocol). A session is opened when the connection reaches the protocol (after PROXY header and implicit TLS),
 * authenticated once the client logged in and the mailbox is open upstream, closed once.
 */
export interface SessionMetrics {
  opened(): void;
  authenticated(): void;
  closed(wasAuthenticated: boolean, reason: SessionEnd, seconds: number): void;
}
