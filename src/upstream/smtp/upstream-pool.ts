import type { EventLogger } from '../../core/event-logger.js';
import type { SubmissionUpstream } from '../../core/ports/submission-upstream.js';
import { UpstreamError } from '../../core/ports/upstream-failure.js';
import type { UpstreamSmtpSession } from './upstream-smtp-session.js';

/** Thrown by acquire() when no session freed up within the wait: the failure vocabulary's `busy`. */
export class UpstreamBusyError extends UpstreamError {
  constructor(mailbox: string) {
    super('busy', `no upstream session free for ${mailbox} in time`);
  }
}

const poolClosed = () => new UpstreamError('unreachable', 'upstream pool closed');

interface Idle {
  session: UpstreamSmtpSession;
  timer: NodeJS.Timeout;
}

interface Waiter {
  resolve: (session: UpstreamSmtpSession) => void;
  reject: (error: Error) => void;
  timer: NodeJS.Timeout;
  /** Answered (a session, an error, or its wait ran out): later outcomes are not for it. */
  settled: boolean;
}

interface MailboxPool {
  /** Sessions handed out or being opened. */
  busy: number;
  idle: Idle[];
  waiting: Waiter[];
}

export interface UpstreamPoolOptions {
  maxPerMailbox: number;
  waitMs: number;
  idleMs: number;
  /** Told when a client gave up waiting (metrics). */
  onWaitTimeout?: () => void;
}

/**
 * Upstream SMTP sessions per mailbox, authenticated once and reused across client connections (a scanner
 * connects once per message), never more than `maxPerMailbox` at once (Exchange Online allows 3 concurrent
 * connections per mailbox, and answers `432 4.3.2` beyond). Extra clients wait up to `waitMs` in arrival order.
 */
export class UpstreamPool implements SubmissionUpstream {
  private readonly pools = new Map<string, MailboxPool>();
  /** Every session handed out and not yet given back, so close() ends them too. */
  private readonly lent = new Set<UpstreamSmtpSession>();
  private closed = false;

  constructor(
    /** Connects and authenticates a new session for the mailbox (throws on failure). */
    private readonly open: (mailbox: string) => Promise<UpstreamSmtpSession>,
    private readonly options: UpstreamPoolOptions,
    private readonly log: EventLogger,
  ) {}

  private pool(mailbox: string): MailboxPool {
    let pool = this.pools.get(mailbox);
    if (!pool) {
      pool = { busy: 0, idle: [], waiting: [] };
      this.pools.set(mailbox, pool);
    }
    return pool;
  }

  async acquire(mailbox: string): Promise<UpstreamSmtpSession> {
    if (this.closed) throw poolClosed();
    const pool = this.pool(mailbox);
    while (pool.idle.length > 0) {
      const { session, timer } = pool.idle.pop()!;
      clearTimeout(timer);
      if (session.reusable) {
        pool.busy++;
        this.lent.add(session);
        return session;
      }
      void session.quit(); // its token expired while idle (a dead one just closes)
    }
    if (pool.busy < this.options.maxPerMailbox) return this.openFor(mailbox, pool);
    return new Promise((resolve, reject) => {
      const waiter: Waiter = {
        resolve,
        reject,
        settled: false,
        // The whole wait, a connection attempt made for this waiter included, is bounded by waitMs.
        timer: setTimeout(() => {
          const index = pool.waiting.indexOf(waiter);
          if (index >= 0) pool.waiting.splice(index, 1);
          this.options.onWaitTimeout?.();
          settle(waiter, () => reject(new UpstreamBusyError(mailbox)));
        }, this.options.waitMs),
      };
      pool.waiting.push(waiter);
    });
  }

  /**
   * Opens a session for a waiter whose turn came when a slot freed up. The waiter keeps its own deadline: if it
   * gives up first, a session that opens later goes back to the pool (to the next waiter, or idle).
   */
  private openForWaiter(mailbox: string, pool: MailboxPool, waiter: Waiter): void {
    this.openFor(mailbox, pool).then(
      (session) => {
        if (this.closed) {
          // The pool closed while this attempt ran: the session is closed, and the waiter told.
          this.release(mailbox, session, false);
          settle(waiter, () => waiter.reject(poolClosed()));
        } else if (waiter.settled) this.release(mailbox, session, true);
        else settle(waiter, () => waiter.resolve(session));
      },
      (error: Error) => settle(waiter, () => waiter.reject(error)),
    );
  }

  /** Gives a session back: reusable ones go to the next waiter or idle; others are closed and their slot freed. */
  release(mailbox: string, session: UpstreamSmtpSession, reusable: boolean): void {
    if (!this.lent.delete(session)) return; // released twice (a late reply after the client left): nothing to do
    const pool = this.pool(mailbox);
    const waiter = pool.waiting.shift();
    // A session with a transaction open or a reply outstanding is never reused, whatever the caller thinks.
    if (reusable && session.reusable && !this.closed) {
      if (waiter) {
        this.lent.add(session);
        settle(waiter, () => waiter.resolve(session)); // the slot passes on: busy stays the same
        return;
      }
      pool.busy--;
      const timer = setTimeout(() => this.expire(mailbox, session), this.options.idleMs);
      timer.unref();
      pool.idle.push({ session, timer });
      return;
    }
    session.close();
    pool.busy--;
    if (waiter) this.openForWaiter(mailbox, pool, waiter);
  }

  private async openFor(mailbox: string, pool: MailboxPool): Promise<UpstreamSmtpSession> {
    pool.busy++;
    try {
      const session = await this.open(mailbox);
      this.lent.add(session);
      return session;
    } catch (error) {
      pool.busy--;
      // Let the next waiter try (within its own deadline): the failure may have been this attempt's alone.
      const waiter = pool.waiting.shift();
      if (waiter) this.openForWaiter(mailbox, pool, waiter);
      throw error;
    }
  }

  private expire(mailbox: string, session: UpstreamSmtpSession): void {
    const pool = this.pool(mailbox);
    const index = pool.idle.findIndex((i) => i.session === session);
    if (index >= 0) pool.idle.splice(index, 1);
    void session.quit();
    if (pool.busy === 0 && pool.idle.length === 0 && pool.waiting.length === 0) this.pools.delete(mailbox);
  }

  /** Sessions open (busy or idle) for a mailbox, for tests and metrics. */
  size(mailbox: string): number {
    const pool = this.pools.get(mailbox);
    return pool ? pool.busy + pool.idle.length : 0;
  }

  /** Sessions busy (lent or opening) and idle, and clients waiting, over every mailbox (metrics read it). */
  stats(): { busy: number; idle: number; waiting: number } {
    const stats = { busy: 0, idle: 0, waiting: 0 };
    for (const pool of this.pools.values()) {
      stats.busy += pool.busy;
      stats.idle += pool.idle.length;
      stats.waiting += pool.waiting.length;
    }
    return stats;
  }

  async close(): Promise<void> {
    this.closed = true;
    const quits: Promise<void>[] = [];
    for (const pool of this.pools.values()) {
      for (const waiter of pool.waiting.splice(0)) settle(waiter, () => waiter.reject(poolClosed()));
      for (const { session, timer } of pool.idle.splice(0)) {
        clearTimeout(timer);
        quits.push(session.quit());
      }
    }
    for (const session of this.lent) session.close();
    this.lent.clear();
    await Promise.all(quits);
    this.log.info({}, 'upstream pool closed');
  }
}

/** Answers a waiter once: stops its timer and runs `answer`, unless it was answered already. */
function settle(waiter: Waiter, answer: () => void): void {
  if (waiter.settled) return;
  waiter.settled = true;
  clearTimeout(waiter.timer);
  answer();
}
