import type { AppPasswordRecord } from './app-password-record.js';
import type { Clock } from './clock.js';
import type { CredentialStore } from './credential-store.js';
import type { EventLogger } from './event-logger.js';

interface Live {
  close: (reason: 'revoked' | 'expired') => void;
}

/**
 * Port: word that app passwords were revoked somewhere (another instance, the CLI in another process). A hint only
 * makes the registry look sooner: the store stays the truth, and polling stays the guarantee, because a hint can be
 * lost (a subscriber reconnecting, a revocation made while this instance was starting).
 */
export interface RevocationHints {
  /** Calls `listener` with the ids of each revocation heard; returns the unsubscribe function. */
  subscribe(listener: (ids: string[]) => void): () => void;
}

/**
 * Long-lived sessions (IMAP, IDLE for hours) by the app password that opened them. Every `intervalMs` it reads
 * the distinct passwords in use from the store and closes the sessions of any that was revoked, removed, turned off
 * or has expired. Reading the store, rather than trusting events, makes a revocation take effect on every instance
 * whoever made it: the CLI in another process, another instance, an operator editing Redis. With `listen()`, a
 * revocation hint checks the passwords it names at once, so a revocation on one instance closes a session held by
 * another in milliseconds rather than within the interval. A store that cannot be read skips one round (sessions
 * stay up; they were authorised).
 */
export class LiveSessionRegistry {
  private readonly sessions = new Map<string, Set<Live>>();
  private timer: NodeJS.Timeout | null = null;
  private sweeping = false;
  /** Ids hinted while a round was running (null: none), checked in a round right after it. */
  private pending: Set<string> | null = null;
  private unsubscribe: (() => void) | null = null;

  constructor(
    private readonly store: CredentialStore,
    private readonly clock: Clock,
    private readonly log: EventLogger,
    private readonly intervalMs: number,
  ) {}

  start(): void {
    this.timer ??= setInterval(() => void this.sweep(), this.intervalMs);
    this.timer.unref();
  }

  /** Checks the passwords named by each hint at once (in addition to the rounds on the timer). */
  listen(hints: RevocationHints): void {
    this.unsubscribe?.();
    this.unsubscribe = hints.subscribe((ids) => void this.sweep(ids));
  }

  /** Registers a live session; returns its unregister function (call it when the session ends). */
  register(appPasswordId: string, close: Live['close']): () => void {
    const live: Live = { close };
    let set = this.sessions.get(appPasswordId);
    if (!set) {
      set = new Set();
      this.sessions.set(appPasswordId, set);
    }
    set.add(live);
    return () => {
      set!.delete(live);
      if (set!.size === 0 && this.sessions.get(appPasswordId) === set) this.sessions.delete(appPasswordId);
    };
  }

  get size(): number {
    let n = 0;
    for (const set of this.sessions.values()) n += set.size;
    return n;
  }

  /**
   * One round over every password in use, or over `only` those of them (a hint). Rounds never overlap: ids hinted
   * during a round are checked in another round right after it, so no hint is dropped; a timer tick during a round
   * is skipped, as the next one comes anyway. Exported for tests; runs
   * on the timer and on hints otherwise.
   */
  async sweep(only?: Iterable<string>): Promise<void> {
    const ids = only === undefined ? [...this.sessions.keys()] : [...only].filter((id) => this.sessions.has(id));
    if (ids.length === 0) return;
    if (this.sweeping) {
      // A timer round during a round adds nothing (the next tick comes anyway); a hint is kept.
      if (only === undefined) return;
      this.pending ??= new Set();
      for (const id of ids) this.pending.add(id);
      return;
    }
    this.sweeping = true;
    try {
      await this.check(ids);
    } finally {
      this.sweeping = false;
    }
    const next = this.pending;
    this.pending = null;
    if (next) await this.sweep(next);
  }

  private async check(ids: string[]): Promise<void> {
    try {
      const now = this.clock();
      for (const id of ids) {
        const record = await this.store.get(id);
        const reason = endReason(record, now);
        if (!reason) continue;
        const set = this.sessions.get(id);
        this.sessions.delete(id);
        this.log.info({ appPasswordId: id, sessions: set?.size ?? 0, reason }, 'closing live sessions');
        // A turned-off password ends its sessions as a revoked one does (the listeners know revoked and expired).
        for (const live of set ?? []) live.close(reason === 'disabled' ? 'revoked' : reason);
      }
    } catch (error) {
      this.log.warn({ cause: (error as Error).message }, 'revocation check skipped');
    }
  }

  stop(): void {
    if (this.timer) clearInterval(this.timer);
    this.timer = null;
    this.unsubscribe?.();
    this.unsubscribe = null;
  }
}

/** Why a live session of this password must end now (null: it may go on): gone or revoked, expired, turned off. */
function endReason(record: AppPasswordRecord | null, now: number): 'revoked' | 'expired' | 'disabled' | null {
  if (record === null || record.revokedAt !== null) return 'revoked';
  if (record.expiresAt !== null && record.expiresAt <= now) return 'expired';
  return record.disabledAt !== null ? 'disabled' : null;
}
