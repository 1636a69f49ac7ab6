import type { Readable } from 'node:stream';
import type { EsmtpParameters, SubmissionSession, SubmissionUpstream } from '../core/ports/submission-upstream.js';
import type { UpstreamReply } from '../core/ports/upstream-failure.js';
import type { TransportMetrics } from '../core/transport-metrics.js';

/**
 * One SubmissionUpstream over several transports (issue 20): each mailbox goes to the transport `choose` names
 * (smtp.upstream.transport, overridden per domain), and each session is given back to the transport that lent it.
 * Sessions are wrapped only to count, per transport, each message's verdict (TransportMetrics); the listener stays
 * transport-blind.
 */
export class SubmissionUpstreamRouter implements SubmissionUpstream {
  private readonly owners = new WeakMap<SubmissionSession, { transport: string; inner: SubmissionSession }>();

  constructor(
    private readonly transports: Readonly<Record<string, SubmissionUpstream>>,
    private readonly choose: (mailbox: string) => string,
    private readonly metrics: TransportMetrics,
  ) {}

  transport(mailbox: string): string {
    return this.choose(mailbox);
  }

  async acquire(mailbox: string): Promise<SubmissionSession> {
    const transport = this.choose(mailbox);
    const inner = await this.transports[transport]!.acquire(mailbox);
    const session = new CountedSession(inner, transport, this.metrics);
    this.owners.set(session, { transport, inner });
    return session;
  }

  release(mailbox: string, session: SubmissionSession, reusable: boolean): void {
    const owner = this.owners.get(session);
    if (!owner) return;
    this.owners.delete(session);
    this.transports[owner.transport]!.release(mailbox, owner.inner, reusable);
  }

  stats(): { busy: number; idle: number; waiting: number } {
    const total = { busy: 0, idle: 0, waiting: 0 };
    for (const upstream of Object.values(this.transports)) {
      const s = upstream.stats();
      total.busy += s.busy;
      total.idle += s.idle;
      total.waiting += s.waiting;
    }
    return total;
  }

  async close(): Promise<void> {
    await Promise.all(Object.values(this.transports).map((upstream) => upstream.close()));
  }
}

/** A session that passes everything through and counts the verdict on each message by transport. */
class CountedSession implements SubmissionSession {
  constructor(
    private readonly inner: SubmissionSession,
    private readonly transport: string,
    private readonly metrics: TransportMetrics,
  ) {}

  get usable(): boolean {
    return this.inner.usable;
  }
  get current(): boolean {
    return this.inner.current;
  }
  get reusable(): boolean {
    return this.inner.reusable;
  }
  get inTransaction(): boolean {
    return this.inner.inTransaction;
  }
  set inTransaction(value: boolean) {
    this.inner.inTransaction = value;
  }
  get pipelining(): boolean {
    return this.inner.pipelining;
  }
  mail(sender: string, parameters: EsmtpParameters): Promise<UpstreamReply> {
    return this.inner.mail(sender, parameters);
  }
  recipient(address: string, parameters: EsmtpParameters): Promise<UpstreamReply> {
    return this.inner.recipient(address, parameters);
  }
  sendDataAhead(): void {
    this.inner.sendDataAhead?.();
  }
  async message(body: Readable): Promise<UpstreamReply> {
    const started = performance.now();
    const seconds = () => (performance.now() - started) / 1000;
    try {
      const reply = await this.inner.message(body);
      this.metrics.message(this.transport, reply.code >= 200 && reply.code < 300 ? 'accepted' : 'refused', seconds());
      return reply;
    } catch (error) {
      this.metrics.message(this.transport, 'failed', seconds());
      throw error;
    }
  }
  reset(): Promise<UpstreamReply> {
    return this.inner.reset();
  }
}
