import type { Readable } from 'node:stream';
import type { EsmtpParameters, SubmissionSession } from '../../core/ports/submission-upstream.js';
import type { UpstreamReply } from '../../core/ports/upstream-failure.js';
import type { GraphMessageSender } from './graph-message-sender.js';

const ok = (enhanced: string, text: string): UpstreamReply => ({ code: 250, enhanced, lines: [text] });

/**
 * A submission session of the Graph transport for one mailbox. There is no connection: MAIL and RCPT are recorded
 * and answered here (Graph gives no verdict per recipient: every recipient passgate's own policy lets through is
 * accepted, and Graph's verdict on the whole message is the reply after DATA). The message is read whole (bounded
 * by the listener's size guard) and only then sent, so a message the listener refuses while it streams (the From
 * check, a revocation, smuggling) never reaches Graph.
 */
export class GraphSubmissionSession implements SubmissionSession {
  inTransaction = false;
  readonly pipelining = true;
  private closed = false;
  private recipients: string[] = [];

  constructor(
    readonly mailbox: string,
    private readonly sender: GraphMessageSender,
  ) {}

  get usable(): boolean {
    return !this.closed;
  }
  get current(): boolean {
    return !this.closed;
  }
  get reusable(): boolean {
    return !this.closed && !this.inTransaction;
  }

  close(): void {
    this.closed = true;
  }

  async mail(_sender: string, _parameters: EsmtpParameters): Promise<UpstreamReply> {
    this.recipients = [];
    return ok('2.1.0', 'Sender OK');
  }

  async recipient(address: string, _parameters: EsmtpParameters): Promise<UpstreamReply> {
    this.recipients.push(address);
    return ok('2.1.5', 'Recipient OK; Microsoft Graph gives its verdict on the whole message after DATA');
  }

  async message(body: Readable): Promise<UpstreamReply> {
    const chunks: Buffer[] = [];
    for await (const chunk of body) chunks.push(chunk as Buffer);
    const recipients = this.recipients;
    this.recipients = [];
    return this.sender.send(this.mailbox, recipients, Buffer.concat(chunks));
  }

  async reset(): Promise<UpstreamReply> {
    this.recipients = [];
    return ok('2.0.0', 'Reset');
  }
}
