// A type only: the authenticated upstream connection is handed to the byte splice as it is.
import type { Socket } from 'node:net';

/** A mailbox logged in upstream: the connection, ready to be spliced to the client. */
export interface MailboxSession {
  socket: Socket;
  /** The upstream's capabilities after login (IMAP: RFC 3501 §7.2.1), as the upstream spelled them. */
  capabilities: string[];
  /** Bytes the upstream sent after its login reply, to be passed to the client first. */
  leftover: Buffer;
}

/**
 * Port: opens an authenticated byte stream for a mailbox (IMAP now, POP3 next): connect, TLS, log in with an
 * access token. After that the edge only splices bytes.
 */
export interface MailboxUpstream {
  /** Throws UpstreamError (token-unavailable, login-refused, unreachable, …). */
  open(mailbox: string): Promise<MailboxSession>;
}
