import type { Protocol } from '../core/protocol.js';
import type { Clock } from '../core/clock.js';
import type { Admission, ConnectionLimiter, ConnectionRefusal } from '../core/connection-limiter.js';
import type { ConnectionMetrics } from '../core/connection-metrics.js';
import type { EventLogger } from '../core/event-logger.js';

/** A flood produces one log line per this interval at most; the metric counts every refusal. */
export const REFUSAL_LOG_INTERVAL_MS = 10_000;
/**
 * Refused connections being told so at once (an implicit-TLS refusal needs a handshake first). Beyond this a
 * refused connection is closed without a word: telling a flood politely must not cost more than the flood.
 */
export const MAX_REFUSALS_IN_FLIGHT = 64;

/**
 * The door of one protocol's listeners: asks the limiter, counts and logs refusals. Shared by every listener of
 * the protocol in this process, so the caps are per protocol, not per port.
 */
export class ConnectionGate {
  private lastLogAt = -Infinity;
  private suppressed = 0;
  private refusing = 0;

  constructor(
    readonly protocol: Protocol,
    private readonly limiter: ConnectionLimiter,
    private readonly deps: { metrics: ConnectionMetrics; log: EventLogger; clock: Clock },
  ) {}

  /** A slot for the client at `ip` (the address after any PROXY header), or the refusal, counted and logged. */
  admit(ip: string, listener: string): Admission {
    const admission = this.limiter.acquire(ip);
    if (!admission.ok) this.refused(ip, listener, admission.reason);
    return admission;
  }

  /** A ticket to tell one refused client why (release it when done), or null: close without a reply. */
  beginRefusal(): (() => void) | null {
    if (this.refusing >= MAX_REFUSALS_IN_FLIGHT) return null;
    this.refusing++;
    let done = false;
    return () => {
      if (done) return;
      done = true;
      this.refusing--;
    };
  }

  private refused(ip: string, listener: string, reason: ConnectionRefusal): void {
    this.deps.metrics.refused(this.protocol, reason);
    const now = this.deps.clock();
    if (now - this.lastLogAt < REFUSAL_LOG_INTERVAL_MS) {
      this.suppressed++;
      return;
    }
    const suppressed = this.suppressed;
    this.lastLogAt = now;
    this.suppressed = 0;
    // One line per interval names the latest refused address; `suppressed` says how many went unlogged before it.
    this.deps.log.warn(
      { protocol: this.protocol, listener, ip, reason, open: this.limiter.active, openFromIp: this.limiter.activeFor(ip), suppressed },
      'connection refused: too many connections',
    );
  }
}
