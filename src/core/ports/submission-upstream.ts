// A type only: a message body is a Node stream, read with backpressure and never whole in memory.
import type { Readable } from 'node:stream';
import type { UpstreamReply } from './upstream-failure.js';

/** ESMTP parameters of MAIL or RCPT as the client gave them (RFC 1870, 3461, 6152, 6531); `false` for none. */
export type EsmtpParameters = Readonly<Record<string, string | boolean>> | false | undefined;

/**
 * Port: one upstream session logged in as a mailbox, which takes one transaction at a time: sender, recipients,
 * message, reset. Every verdict is the upstream's own reply (an SMTP relay passes its replies; a transport without
 * per-recipient verdicts accepts each recipient and gives its verdict on the message). A method rejects, with an
 * UpstreamError of kind `lost`, only when the session broke before the reply.
 */
export interface SubmissionSession {
  /** Connected and not failed. */
  readonly usable: boolean;
  /** Usable and its login still good (a provider may stop honouring a session past its token's life). */
  readonly current: boolean;
  /** Current, no transaction open and no reply outstanding: the only state in which it may be reused. */
  readonly reusable: boolean;
  /** A transaction is open (set by the caller when it sends the sender, cleared when it ends). */
  inTransaction: boolean;
  /** The next command may go out before this one's verdict (RFC 2920 PIPELINING): MAIL and the first RCPT together. */
  readonly pipelining: boolean;
  /** Starts a transaction; the reply may be read later (pipelined with the first recipient). */
  mail(sender: string, parameters: EsmtpParameters): Promise<UpstreamReply>;
  recipient(address: string, parameters: EsmtpParameters): Promise<UpstreamReply>;
  /**
   * The client has already sent DATA (pipelined behind this RCPT): the session may ask the upstream for the message
   * now, so message() need not wait a round trip for it. Optional: a transport without such a step leaves it out.
   */
  sendDataAhead?(): void;
  /** Streams the message and resolves with the final verdict (or the refusal to take a message at all). */
  message(body: Readable): Promise<UpstreamReply>;
  /** Ends the open transaction without a message (RSET); anything but 250 means the session is not to be trusted. */
  reset(): Promise<UpstreamReply>;
}

/**
 * Port: where a mailbox's submissions go (an SMTP relay, or Graph sendMail: upstream/submission-upstream-router.ts). Sessions are logged in, bounded
 * and reused by the implementation; the listener only borrows one for a client and gives it back.
 */
export interface SubmissionUpstream {
  /** A session logged in as `mailbox`, new or reused. Throws UpstreamError (token-unavailable, login-refused, busy, …). */
  acquire(mailbox: string): Promise<SubmissionSession>;
  /** Gives a session back: kept for reuse if `reusable` and the session agrees, closed otherwise. Twice is harmless. */
  release(mailbox: string, session: SubmissionSession, reusable: boolean): void;
  /** The name of the transport that carries `mailbox`'s mail (`smtp`, `graph`), for the session line; absent: one transport. */
  transport?(mailbox: string): string;
  /** Sessions lent or opening, idle, and clients waiting, over every mailbox (metrics). */
  stats(): { busy: number; idle: number; waiting: number };
  close(): Promise<void>;
}
