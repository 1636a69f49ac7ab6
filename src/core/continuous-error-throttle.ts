import { createHash } from 'node:crypto';
import type { ContinuousErrorLimits, ContinuousErrorMemory, RememberedRefusal } from './continuous-error-memory.js';
import type { EventLogger } from './event-logger.js';
import type { UpstreamReply } from './ports/upstream-failure.js';

/**
 * Exchange Online's continuous-error throttling: a mailbox whose SMTP AUTH submissions keep failing with the same
 * permanent error (5.2.251 … 5.2.255, SendAs denied 5.2.252 among them) is throttled by Exchange for a while;
 * support cannot lift it, and the failures are not in message trace. The enhanced codes that count.
 */
export const CONTINUOUS_ERROR_CODES: ReadonlySet<string> = new Set(['5.2.251', '5.2.252', '5.2.253', '5.2.254', '5.2.255']);

/** One submission: the mailbox it is sent as, its envelope sender and one recipient. */
export interface Submission {
  mailbox: string;
  sender: string;
  recipient: string;
}

/**
 * Remembers the upstream's continuous-error refusals per (mailbox, sender, recipient) and holds the same failing
 * submission back for a cool-down, so a misconfigured scanner repeating it cannot get a shared mailbox throttled.
 * A memory that cannot be read lets the submission through (logged): the upstream still gives its own verdict.
 */
export class ContinuousErrorThrottle {
  private readonly limits: ContinuousErrorLimits;

  constructor(
    private readonly memory: ContinuousErrorMemory,
    options: { threshold: number; coolDownMs: number },
    private readonly log: EventLogger,
  ) {
    // Counted within the cool-down: the same refusals that close together would make Exchange throttle.
    this.limits = { threshold: options.threshold, windowMs: options.coolDownMs, holdMs: options.coolDownMs };
  }

  get enabled(): boolean {
    return this.limits.holdMs > 0;
  }

  /** The refusal this submission is held back with, or null when it may go upstream. */
  async held(submission: Submission): Promise<{ refusal: RememberedRefusal; remainingMs: number } | null> {
    if (!this.enabled) return null;
    try {
      return await this.memory.held(keyOf(submission));
    } catch (error) {
      this.log.warn({ mailbox: submission.mailbox, cause: (error as Error).message }, 'continuous-error memory unavailable');
      return null;
    }
  }

  /** The upstream's reply to this submission (RCPT, or the message's final reply): counted, or the count reset. */
  async observe(submission: Submission, reply: UpstreamReply): Promise<void> {
    if (!this.enabled) return;
    const counts = reply.code >= 500 && reply.enhanced !== null && CONTINUOUS_ERROR_CODES.has(reply.enhanced);
    if (!counts && reply.code >= 300) return;
    try {
      if (!counts) return await this.memory.forget(keyOf(submission));
      const refusal: RememberedRefusal = { code: reply.code, enhanced: reply.enhanced!, text: reply.lines.join(' ').slice(0, 300) };
      if (await this.memory.record(keyOf(submission), refusal, this.limits)) {
        this.log.warn({ ...submission, code: refusal.enhanced, holdMs: this.limits.holdMs }, 'submission held back after continuous upstream refusals');
      }
    } catch (error) {
      this.log.warn({ mailbox: submission.mailbox, cause: (error as Error).message }, 'continuous-error memory unavailable');
    }
  }
}

/** A fixed-length key of a submission (addresses compared case-insensitively), never the addresses themselves. */
export function keyOf({ mailbox, sender, recipient }: Submission): string {
  return createHash('sha256').update(`${mailbox}\0${sender}\0${recipient}`.toLowerCase()).digest('base64url').slice(0, 32);
}
