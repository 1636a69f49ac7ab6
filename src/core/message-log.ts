import type { Protocol } from './protocol.js';

/**
 * How a message (or an attempt at one) ended:
 *  - relayed: the upstream answered 250 to the end of DATA (its reply and queue id are in the record);
 *  - refused: the upstream refused it (MAIL, a RCPT or DATA); its reply passed to the client unchanged;
 *  - failed: the upstream was unreachable or the connection broke before it confirmed; the client got a 4xx;
 *  - policy-denied: the app password's mail policy refused it (sender, recipient domain, size, rate): `detail`
 *    says which rule and which address.
 */
export const MESSAGE_RESULTS = ['relayed', 'refused', 'failed', 'policy-denied'] as const;
export type MessageResult = (typeof MESSAGE_RESULTS)[number];

export function isMessageResult(value: string): value is MessageResult {
  return (MESSAGE_RESULTS as readonly string[]).includes(value);
}

/**
 * Recipients kept in a record: the count is always exact, the list stops here. Enough for a scanner or a script
 * (what the trace is for) while a bulk mail cannot make one record large.
 */
export const MAX_RECORDED_RECIPIENTS = 50;

/** One message through passgate: what a user matches against the provider's own message trace. */
export interface MessageRecord {
  /** Epoch ms when the outcome was decided (the upstream's final reply, or the refusal). */
  at: number;
  /** The client session (as in the `session closed` log line). */
  sessionId: string;
  protocol: Protocol;
  username: string;
  mailbox: string;
  clientIp: string;
  appPasswordId: string;
  appPasswordName: string;
  /** The envelope sender (MAIL FROM), as relayed; '' for the null sender. */
  sender: string;
  /** Envelope recipients of the message (for a refused RCPT: that one recipient). */
  recipientCount: number;
  /** The recipients, at most MAX_RECORDED_RECIPIENTS of them. */
  recipients: string[];
  /** Bytes of the message as received; null when no DATA was sent. */
  sizeBytes: number | null;
  /** The Message-ID header of the message, when it had one (null before DATA). */
  messageId: string | null;
  /** The final reply the client got, code and text ("250 2.0.0 OK <...> [Hostname=...]"). */
  reply: string | null;
  /** The upstream's queue or message id, as far as its 250 reply names one. */
  queueId: string | null;
  result: MessageResult;
  /** For operators (never a secret): which policy rule and address, or why the upstream was not reached. */
  detail: string | null;
}

export interface MessageQuery {
  username?: string;
  appPasswordId?: string;
  result?: MessageResult;
  protocol?: Protocol;
  /** Epoch ms; only records at or after it. */
  since?: number;
  /** Epoch ms; only records before it. */
  until?: number;
  /** Most records returned, newest first. */
  limit: number;
}

/** Does a record pass the query's filters (time aside)? One rule for every implementation. */
export function matchesMessageQuery(record: MessageRecord, q: MessageQuery): boolean {
  return (
    (q.username === undefined || record.username === q.username) &&
    (q.appPasswordId === undefined || record.appPasswordId === q.appPasswordId) &&
    (q.result === undefined || record.result === q.result) &&
    (q.protocol === undefined || record.protocol === q.protocol)
  );
}

/** Port: the message trace, bounded like the sign-in log (its retention and its maximum number of entries). */
export interface MessageLog {
  append(record: MessageRecord): Promise<void>;
  /** Newest first. */
  query(query: MessageQuery): Promise<MessageRecord[]>;
  /** Deletes records older than the retention window; returns how many went (may be an estimate on Redis). */
  prune(): Promise<number>;
  close(): Promise<void>;
}
