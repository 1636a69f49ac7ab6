import type { SubmissionSession, SubmissionUpstream } from '../../core/ports/submission-upstream.js';
import { upstreamFailure, UpstreamError } from '../../core/ports/upstream-failure.js';
import type { TokenProvider } from '../../core/token-provider.js';
import { GRAPH_AUDIENCE, type GraphMessageSender } from './graph-message-sender.js';
import type { RequestSlots } from '../../core/ports/request-slots.js';
import { GraphSubmissionSession } from './graph-submission-session.js';

/**
 * The Graph transport as a SubmissionUpstream (issue 20): a session per client, no connection to hold. acquire
 * proves what can be proved without sending: an access token for the mailbox with Graph's audience (at AUTH, a token
 * problem is a login failure the device reports). Graph's limits are kept per request by the sender.
 */
export class GraphSubmissionUpstream implements SubmissionUpstream {
  private readonly lent = new Set<GraphSubmissionSession>();
  private closed = false;

  constructor(
    private readonly tokens: TokenProvider,
    private readonly sender: GraphMessageSender,
    private readonly slots: RequestSlots,
  ) {}

  async acquire(mailbox: string): Promise<SubmissionSession> {
    if (this.closed) throw new UpstreamError('unreachable', 'the Graph transport is closed');
    try {
      await this.tokens.getAccessToken(mailbox, GRAPH_AUDIENCE);
    } catch (error) {
      throw upstreamFailure(error);
    }
    const session = new GraphSubmissionSession(mailbox, this.sender);
    this.lent.add(session);
    return session;
  }

  release(_mailbox: string, session: SubmissionSession, _reusable: boolean): void {
    if (!(session instanceof GraphSubmissionSession) || !this.lent.delete(session)) return;
    session.close();
  }

  stats(): { busy: number; idle: number; waiting: number } {
    return { busy: this.lent.size, idle: 0, waiting: this.slots.waiting };
  }

  async close(): Promise<void> {
    this.closed = true;
    for (const session of this.lent) session.close();
    this.lent.clear();
  }
}
