import type { SMTPServerSession } from 'smtp-server';
import type { EventLogger } from '../core/event-logger.js';
import { MAX_RECORDED_RECIPIENTS, type MessageLog, type MessageRecord, type MessageResult } from '../core/message-log.js';
import type { Clock } from '../core/clock.js';
import { envelopeAddress } from './envelope-address.js';
import { parseQueueId } from './message-id-reader.js';
import { SMTP_REPLIES, type SmtpReplySpec } from './smtp-replies.js';

/** Who sent it: the login of the connection. */
export interface TraceLogin {
  username: string;
  mailbox: string;
  appPasswordId: string;
  appPasswordName: string;
}

/** What the session handler knows when a message's outcome is decided. */
export interface TraceOutcome {
  result: MessageResult;
  /** The envelope sender as the client gave it. */
  sender: string;
  recipients: string[];
  /** The reply the client got. */
  reply: SmtpReplySpec;
  sizeBytes?: number | null;
  messageId?: string | null;
  detail?: string | null;
}

/** The policy rule behind each of passgate's own refusals, named in the record and the log. */
function policyRule(reply: SmtpReplySpec): string {
  if (reply === SMTP_REPLIES.senderDenied) return 'sender not allowed';
  if (reply === SMTP_REPLIES.recipientDenied) return 'recipient domain not allowed';
  if (reply === SMTP_REPLIES.messageTooBig) return 'message too big';
  if (reply === SMTP_REPLIES.messageRateExceeded) return 'message rate limit reached';
  return 'refused';
}

const LOG_MESSAGE: Record<MessageResult, string> = {
  relayed: 'message relayed',
  refused: 'message refused upstream',
  failed: 'message not relayed',
  'policy-denied': 'message refused by policy',
};

/**
 * The message trace of SMTP sessions: one record per message (or per refusal of one: a policy rule, the upstream
 * refusing MAIL or a RCPT), written to the MessageLog and logged with the same fields, so "did the scanner's 09:00
 * scan go?" has an answer to match against the provider's own message trace. A record that cannot be written is
 * logged and the message goes on: the trace never holds up or fails mail.
 */
export class SmtpMessageTrace {
  constructor(
    private readonly deps: { messages: MessageLog | null; log: EventLogger; clock: Clock },
  ) {}

  async record(session: SMTPServerSession, login: TraceLogin, outcome: TraceOutcome): Promise<void> {
    const recipients = outcome.recipients.map(envelopeAddress);
    const reply = `${outcome.reply.code} ${outcome.reply.text}`;
    const rule = outcome.result === 'policy-denied' ? policyRule(outcome.reply) : null;
    const record: MessageRecord = {
      at: this.deps.clock(),
      sessionId: session.id,
      protocol: 'smtp',
      username: login.username,
      mailbox: login.mailbox,
      clientIp: session.remoteAddress,
      appPasswordId: login.appPasswordId,
      appPasswordName: login.appPasswordName,
      sender: envelopeAddress(outcome.sender),
      recipientCount: recipients.length,
      recipients: recipients.slice(0, MAX_RECORDED_RECIPIENTS),
      sizeBytes: outcome.sizeBytes ?? null,
      messageId: outcome.messageId ?? null,
      reply,
      queueId: outcome.result === 'relayed' ? parseQueueId(outcome.reply.text) : null,
      result: outcome.result,
      detail: rule === null ? (outcome.detail ?? null) : `${rule}${outcome.detail ? `: ${outcome.detail}` : ''}`,
    };
    const { at: _at, protocol: _protocol, username, appPasswordId, appPasswordName, sessionId, clientIp, ...rest } = record;
    const fields = { session: sessionId, user: username, appPasswordId, appPasswordName, ip: clientIp, ...rest };
    if (outcome.result === 'relayed') this.deps.log.info(fields, LOG_MESSAGE[outcome.result]);
    else this.deps.log.warn(fields, LOG_MESSAGE[outcome.result]);
    if (!this.deps.messages) return;
    try {
      await this.deps.messages.append(record);
    } catch (error) {
      this.deps.log.error({ session: session.id, cause: (error as Error).message }, 'message trace record not written');
    }
  }
}
