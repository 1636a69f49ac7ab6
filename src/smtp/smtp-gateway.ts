import type { SmtpConfig } from '../config/config-schema.js';
import type { Authenticator } from '../core/authenticator.js';
import type { EventLogger } from '../core/event-logger.js';
import type { LiveSessionRegistry } from '../core/live-session-registry.js';
import type { CredentialStore } from '../core/credential-store.js';
import type { MessageLimiter } from '../core/message-limiter.js';
import type { SubmissionUpstream } from '../core/ports/submission-upstream.js';
import type { SmtpMetrics } from '../core/smtp-metrics.js';
import type { ConnectionGate } from '../net/connection-gate.js';
import type { MessageLog } from '../core/message-log.js';
import type { ContinuousErrorThrottle } from '../core/continuous-error-throttle.js';
import type { TlsCertificates } from '../tls/tls-certificates.js';
import { SmtpListener } from './smtp-listener.js';
import { SmtpMessageTrace } from './smtp-message-trace.js';
import { SmtpSessionHandler } from './smtp-session-handler.js';

export interface SmtpGatewayDeps {
  authenticator: Authenticator;
  /** Where submissions go (the composition root picks the implementation: the SMTP relay's pool today). */
  upstream: SubmissionUpstream;
  messages: MessageLimiter;
  store: CredentialStore;
  tls: TlsCertificates;
  metrics: SmtpMetrics;
  log: EventLogger;
  hostname: string;
  maxFailuresPerConnection: number;
  /** The SMTP connection caps: one gate for every SMTP listener of this process (per protocol, not per port). */
  gate: ConnectionGate;
  /** Where the message trace is written; absent: it is only logged. */
  messageLog?: MessageLog;
  /** Ends sessions of revoked, expired or turned-off passwords (the one IMAP uses too). */
  registry: LiveSessionRegistry;
  /** Issue 17: Exchange Online's continuous-error throttling, avoided (memory or Redis, chosen by app.ts). */
  continuousErrors: ContinuousErrorThrottle;
}

/**
 * SMTP submission: the listeners and their session handler, started and stopped together; the submission
 * upstream is handed in and closed with them.
 */
export class SmtpGateway {
  readonly upstream: SubmissionUpstream;
  readonly listeners: SmtpListener[];

  constructor(config: SmtpConfig, deps: SmtpGatewayDeps) {
    this.upstream = deps.upstream;
    const handler: SmtpSessionHandler = new SmtpSessionHandler(
      {
        authenticator: deps.authenticator,
        pool: deps.upstream,
        messages: deps.messages,
        store: deps.store,
        registry: deps.registry,
        metrics: deps.metrics,
        log: deps.log,
        closeConnection: (session, reply) => this.listeners.forEach((l) => l.closeSession(session, reply)),
        trace: new SmtpMessageTrace({ messages: deps.messageLog ?? null, log: deps.log, clock: Date.now }),
        continuousErrors: deps.continuousErrors,
      },
      { maxFailuresPerConnection: deps.maxFailuresPerConnection, maxMessageBytes: config.max_message_bytes, checkFromHeader: config.check_from_header },
    );
    this.listeners = config.listeners.map(
      (listener) =>
        new SmtpListener(listener, {
          handler,
          tls: deps.tls,
          hostname: deps.hostname,
          maxMessageBytes: config.max_message_bytes,
          maxRecipients: config.max_recipients,
          log: deps.log,
          gate: deps.gate,
          loginTimeoutMs: config.login_timeout_seconds * 1000,
        }),
    );
  }

  async start(): Promise<void> {
    for (const listener of this.listeners) await listener.listen();
  }

  /** The port each listener is bound to, by name (tests listen on port 0). */
  ports(): Record<string, number> {
    return Object.fromEntries(this.listeners.map((l) => [l.config.name, l.port]));
  }

  async close(graceMs = 10_000): Promise<void> {
    await Promise.all(this.listeners.map((l) => l.close(graceMs)));
    await this.upstream.close();
  }
}
