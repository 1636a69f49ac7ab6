import type { Clock } from './clock.js';
import type { CredentialStore } from './credential-store.js';
import type { EventLogger } from './event-logger.js';

interface Live {
  close: (reason: 'revoked' | 'expired') => void;
}

/**
 * Long-lived sessions (IMAP, IDLE for hours) by the app password that opened them. Every `intervalMs` it reads
 * the distinct passwords in use from the store and closes the sessions of any that was revoked, removed or has
 * expired. Reading the store, rather than listening for events, makes a revocation take effect on every instance
 * whoever made it: the CLI in another process, another instance, an operator editing Redis. A store that cannot
 * be read skips one round (sessions stay up; they were authorised).
 */
export class LiveSessionRegistry {
  private readonly sessions = new Map<string, Set<Live>>();
  private timer: NodeJS.Timeout | null = null;
  private sweeping = false;

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

  /** One round: exported for tests; runs on the timer otherwise. */
  async sweep(): Promise<void> {
    if (this.sweeping) return;
    this.sweeping = true;
    try {
      const now = this.clock();
      for (const id of [...this.sessions.keys()]) {
        const record = await this.store.get(id);
        const reason = record === null || record.revokedAt !== null ? 'revoked' : record.expiresAt !== null && record.expiresAt <= now ? 'expired' : null;
        if (!reason) continue;
        const set = this.sessions.get(id);
        this.sessions.delete(id);
        this.log.info({ appPasswordId: id, sessions: set?.size ?? 0, reason }, 'closing live sessions');
        for (const live of set ?? []) live.close(reason);
      }
    } catch (error) {
      this.log.warn({ cause: (error as Error).message }, 'revocation check skipped');
    } finally {
      this.sweeping = false;
    }
  }

  stop(): void {
    if (this.timer) clearInterval(this.timer);
    this.timer = null;
  }
}
