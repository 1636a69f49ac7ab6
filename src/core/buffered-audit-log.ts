import type { AuditEvent, AuditLog, AuditQuery } from './audit-log.js';
import type { AuditMetrics } from './audit-metrics.js';
import type { EventLogger } from './event-logger.js';

export interface BufferedAuditLogOptions {
  /** Most records held while the store fails; past it the oldest is dropped. 0: hold none (drop at once). */
  maxQueued: number;
  /** First retry this long after the store failed; doubled after each failed retry, up to maxRetryMs. */
  retryMs?: number;
  maxRetryMs?: number;
  /** close() gives the last write of held records this long before it reports them lost. */
  closeFlushMs?: number;
}

interface Held {
  event: AuditEvent;
  /** A write of it failed: it may still have landed (a timed-out command on a hung Redis runs when Redis wakes). */
  tried: boolean;
}

/** How far back the store is searched for a record that may have landed (records of one user since its time). */
const LANDED_SEARCH_LIMIT = 1000;

/**
 * The sign-in log, kept through a store outage. An append goes straight to the store while nothing is held; when
 * it fails, the record is held in memory (in order, at most `maxQueued`, oldest dropped first) and the call still
 * resolves: a login's outcome never waits for, or fails with, its bookkeeping. While records are held, new ones
 * join the queue at once, so a login does not wait `redis.command_timeout_ms` on a store known to be down.
 *
 * A flusher retries with backoff. Each retry first reads the store (the oldest record's user since its time): a
 * read that times out on a hung Redis is harmless when Redis wakes, where a write would land once per retry. When
 * the read answers, held records are written oldest first, each keeping its own `at`; one whose earlier write
 * failed is written only if the store does not already hold it, so a timed-out write that landed after all is not
 * doubled. query() and prune() go to the store as they are (a query fails during an outage).
 */
export class BufferedAuditLog implements AuditLog {
  private readonly queue: Held[] = [];
  /** The oldest held record while the flusher handles it: out of the queue, so a full queue never drops it then. */
  private attempting: Held | null = null;
  private timer: ReturnType<typeof setTimeout> | null = null;
  private flushing: Promise<void> | null = null;
  private nextDelayMs: number;
  private droppedTotal = 0;
  private closing: Promise<void> | null = null;
  private stopped = false;
  private readonly retryMs: number;
  private readonly maxRetryMs: number;
  private readonly closeFlushMs: number;
  private readonly maxQueued: number;

  constructor(
    private readonly inner: AuditLog,
    private readonly log: EventLogger,
    private readonly metrics: AuditMetrics,
    options: BufferedAuditLogOptions,
  ) {
    this.maxQueued = options.maxQueued;
    this.retryMs = options.retryMs ?? 1000;
    this.maxRetryMs = options.maxRetryMs ?? 30_000;
    this.closeFlushMs = options.closeFlushMs ?? 5000;
    this.nextDelayMs = this.retryMs;
  }

  /** Records held in memory, not yet in the store. */
  get queued(): number {
    return this.queue.length + (this.attempting ? 1 : 0);
  }

  /** Records dropped since start (buffer full, or still held at close). */
  get dropped(): number {
    return this.droppedTotal;
  }

  async append(event: AuditEvent): Promise<void> {
    if (this.closing === null && this.queued > 0) return this.hold({ event, tried: false }, null);
    try {
      await this.inner.append(event);
    } catch (error) {
      // After close() there is no flusher: fail as the store does, and the caller logs the record.
      if (this.closing !== null) throw error;
      this.hold({ event, tried: true }, error);
    }
  }

  query(query: AuditQuery): Promise<AuditEvent[]> {
    return this.inner.query(query);
  }

  prune(): Promise<number> {
    return this.inner.prune();
  }

  /** The store is known to be back (e.g. Redis reconnected): retry now rather than at the end of the backoff. */
  retryNow(): void {
    if (this.timer === null) return;
    clearTimeout(this.timer);
    this.timer = null;
    this.nextDelayMs = this.retryMs;
    this.startFlush();
  }

  /** One last write of the held records (bounded by closeFlushMs); what is left is logged as lost. Idempotent. */
  close(): Promise<void> {
    this.closing ??= this.shutdown();
    return this.closing;
  }

  private async shutdown(): Promise<void> {
    if (this.timer !== null) clearTimeout(this.timer);
    this.timer = null;
    if (this.queued > 0) {
      let bound: ReturnType<typeof setTimeout> | undefined;
      const last = (async () => {
        await this.flushing;
        if (this.queue.length > 0) await this.flush();
      })();
      await Promise.race([last, new Promise<void>((resolve) => (bound = setTimeout(resolve, this.closeFlushMs)))]);
      clearTimeout(bound);
    }
    this.stopped = true;
    // A record whose write is still in flight may yet land; it is reported, since nothing will confirm it.
    const lost = [...(this.attempting ? [this.attempting] : []), ...this.queue];
    this.queue.length = 0;
    this.attempting = null;
    for (const { event } of lost) this.drop(event, 'audit event lost');
    await this.inner.close();
  }

  private hold(held: Held, cause: unknown): void {
    const first = this.queued === 0;
    this.queue.push(held);
    if (first && cause !== null && this.maxQueued > 0) {
      this.log.warn({ cause: (cause as Error).message, maxQueued: this.maxQueued }, 'audit log unavailable; holding sign-in records');
    }
    while (this.queued > this.maxQueued && this.queue.length > 0) this.drop(this.queue.shift()!.event, 'audit event dropped');
    this.schedule();
  }

  /** Logged with the whole record (no secrets in it), so the sign-in is still on file in the log stream. */
  private drop(event: AuditEvent, message: 'audit event dropped' | 'audit event lost'): void {
    this.droppedTotal++;
    this.metrics.dropped();
    this.log.error({ ...event, dropped: this.droppedTotal }, message);
  }

  private schedule(): void {
    if (this.timer !== null || this.flushing !== null || this.closing !== null || this.queued === 0) return;
    this.timer = setTimeout(() => {
      this.timer = null;
      this.startFlush();
    }, this.nextDelayMs);
    this.timer.unref();
  }

  private startFlush(): void {
    if (this.flushing !== null) return;
    this.flushing = this.retry().finally(() => {
      this.flushing = null;
      this.schedule();
    });
  }

  private async retry(): Promise<void> {
    const { written, alreadyStored, failure } = await this.flush();
    if (this.closing !== null) return;
    if (failure === null) {
      this.nextDelayMs = this.retryMs;
      this.log.info({ written, alreadyStored }, 'audit log available again; held sign-in records written');
      return;
    }
    this.nextDelayMs = written + alreadyStored > 0 ? this.retryMs : Math.min(this.nextDelayMs * 2, this.maxRetryMs);
    this.log.warn({ cause: (failure as Error).message, queued: this.queued, retryInMs: this.nextDelayMs }, 'audit log still unavailable');
  }

  /**
   * Writes held records oldest first until none is left or the store fails (that record stays first). The first
   * is always read for before anything is written: that read is the probe that keeps a retry from writing into a
   * store that does not answer. A record whose write was tried before is read for too, and not written again if
   * the store already has it.
   */
  private async flush(): Promise<{ written: number; alreadyStored: number; failure: unknown }> {
    let written = 0;
    let alreadyStored = 0;
    let probed = false;
    while (!this.stopped && this.queue.length > 0) {
      const held = this.queue.shift()!;
      this.attempting = held;
      try {
        const stored = held.tried || !probed ? await this.stores(held.event) : false;
        probed = true;
        if (this.stopped) break; // close() gave up meanwhile and reported it lost
        if (held.tried && stored) alreadyStored++;
        else {
          await this.inner.append(held.event);
          written++;
        }
      } catch (error) {
        // Not after close() reported it lost. Tried only if the write was sent (a failed probe sends none).
        if (this.attempting === held) {
          held.tried ||= probed;
          this.queue.unshift(held);
        }
        this.attempting = null;
        return { written, alreadyStored, failure: error ?? new Error('audit log failed') };
      }
      this.attempting = null;
    }
    return { written, alreadyStored, failure: null };
  }

  /** Whether the store already has this very record (a write that timed out but ran). */
  private async stores(event: AuditEvent): Promise<boolean> {
    const found = await this.inner.query({ username: event.username, since: event.at, limit: LANDED_SEARCH_LIMIT });
    return found.some((e) => sameEvent(e, event));
  }
}

function sameEvent(a: AuditEvent, b: AuditEvent): boolean {
  return (
    a.at === b.at &&
    a.action === b.action &&
    a.protocol === b.protocol &&
    a.username === b.username &&
    a.clientIp === b.clientIp &&
    a.appPasswordId === b.appPasswordId &&
    a.appPasswordName === b.appPasswordName &&
    a.reason === b.reason &&
    a.detail === b.detail
  );
}
