import type { Socket } from 'node:net';
import type { SMTPServerSession } from 'smtp-server';
import type { EventLogger } from '../core/event-logger.js';
import type { SessionEnd, SessionMetrics } from '../core/session-metrics.js';
import { SessionSummary } from '../core/session-summary.js';

/** How long after the socket closed a session still waits for smtp-server's onClose before it is ended anyway. */
const BACKSTOP_MS = 1000;

/**
 * The SessionSummary of every SMTP connection, by smtp-server session id: started when the listener hands the
 * socket to smtp-server, ended by smtp-server's onClose (which fires once per connection, after the socket
 * closed, so the byte counts are final). smtp-server says nothing about why a connection ended; passgate names
 * its own reasons (too many failures, a login no longer valid, shutdown), a last `421` reply written by
 * smtp-server means a timeout or a server-side close, and anything else is the client leaving (QUIT or not).
 */
export class SmtpSessionSummaries {
  private readonly open = new Map<string, SessionSummary>();

  constructor(
    private readonly metrics: SessionMetrics,
    private readonly log: EventLogger,
  ) {}

  /** `wire` is the client's TCP socket as accepted (its byte counts include TLS and the PROXY header). */
  opened(id: string, listener: string, clientIp: string, wire: Socket): void {
    const summary = new SessionSummary({ session: id, protocol: 'smtp', listener, ip: clientIp }, wire, { metrics: this.metrics, log: this.log });
    this.open.set(id, summary);
    // A backstop: a socket that closed before smtp-server took it never gets an onClose.
    const backstop = () => setTimeout(() => this.end(id), BACKSTOP_MS).unref();
    if (wire.destroyed) backstop();
    else wire.once('close', backstop);
  }

  get(id: string): SessionSummary | undefined {
    return this.open.get(id);
  }

  closing(id: string, reason: SessionEnd): void {
    this.open.get(id)?.closing(reason);
  }

  /** smtp-server's onClose. */
  closed(session: SMTPServerSession): void {
    // smtp-server keeps the last reply of 400 or more in session.error, and closes the connection after any 421.
    const last = (session as { error?: unknown }).error;
    if (typeof last === 'string' && last.startsWith('421')) this.closing(session.id, /timeout/i.test(last) ? 'timeout' : 'server-closed');
    this.end(session.id);
  }

  private end(id: string): void {
    const summary = this.open.get(id);
    if (!summary) return;
    this.open.delete(id);
    summary.end('client-closed');
  }
}
