import { systemClock, type Clock } from './clock.js';
import type { EventLogger } from './event-logger.js';
import type { Protocol } from './protocol.js';
import type { SessionEnd, SessionMetrics } from './session-metrics.js';

/** Byte counts of the client's TCP connection (a net.Socket has them): TLS records and PROXY header included. */
export interface WireCounters {
  readonly bytesRead: number;
  readonly bytesWritten: number;
}

export interface SessionLogin {
  username: string;
  mailbox: string;
  appPasswordId: string;
  appPasswordName: string;
  /** SMTP: the transport that carries the mailbox's messages (`smtp`, `graph`; issue 20). */
  transport?: string | undefined;
}

export interface SessionSummaryDeps {
  metrics: SessionMetrics;
  log: EventLogger;
  clock?: Clock;
}

/**
 * One client session from the protocol's start to the connection's close, for both protocols: keeps the session
 * gauges right, and writes exactly one `session closed` line — who (once logged in), through which listener, how
 * much, how long, and why it ended. It never holds a secret: only names, ids and counts reach it.
 */
export class SessionSummary {
  private login: SessionLogin | null = null;
  private reason: SessionEnd | null = null;
  private ended = false;
  private messages = 0;
  private recipients = 0;
  private readonly started: number;
  private readonly clock: Clock;

  constructor(
    private readonly base: { session: string; protocol: Protocol; listener: string; ip: string },
    private readonly wire: WireCounters,
    private readonly deps: SessionSummaryDeps,
  ) {
    this.clock = deps.clock ?? systemClock;
    this.started = this.clock();
    deps.metrics.opened();
  }

  get isEnded(): boolean {
    return this.ended;
  }

  /** The client logged in and its mailbox is open upstream. */
  authenticated(login: SessionLogin): void {
    if (this.login || this.ended) return;
    this.login = login;
    this.deps.metrics.authenticated();
  }

  /** A message the upstream accepted (SMTP). */
  message(recipients: number): void {
    this.messages++;
    this.recipients += recipients;
  }

  /** Says why the session is ending; the first reason given wins over what the socket's close says later. */
  closing(reason: SessionEnd): void {
    this.reason ??= reason;
  }

  /** The connection is closed: counts and logs the session, once (later calls do nothing). */
  end(fallback: SessionEnd = 'client-closed'): void {
    if (this.ended) return;
    this.ended = true;
    const reason = this.reason ?? fallback;
    const durationMs = Math.max(0, this.clock() - this.started);
    this.deps.metrics.closed(this.login !== null, reason, durationMs / 1000);
    const login = this.login;
    this.deps.log.info(
      {
        ...this.base,
        ...(login && { user: login.username, mailbox: login.mailbox, appPasswordId: login.appPasswordId, appPasswordName: login.appPasswordName }),
        ...(this.base.protocol === 'smtp' && { messages: this.messages, recipients: this.recipients }),
        ...(login?.transport !== undefined && { transport: login.transport }),
        bytesIn: this.wire.bytesRead,
        bytesOut: this.wire.bytesWritten,
        durationMs,
        reason,
      },
      'session closed',
    );
  }
}
