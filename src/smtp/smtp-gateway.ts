import type { SmtpConfig } from '../config/config-schema.js';
import type { Authenticator } from '../core/authenticator.js';
import type { EventLogger } from '../core/event-logger.js';
import type { LiveSessionRegistry } from '../core/live-session-registry.js';
import type { CredentialStore } from '../core/credential-store.js';
import type { ConnectionMetrics } from '../core/connection-metrics.js';
import { ConnectionLimiter } from '../core/connection-limiter.js';
import { NetworkList } from '../core/network-list.js';
import { ConnectionGate } from '../net/connection-gate.js';
import type { MessageLimiter } from '../core/message-limiter.js';
import type { SmtpMetrics } from '../core/smtp-metrics.js';
import type { TokenProvider } from '../core/token-provider.js';
import type { TlsCertificates } from '../tls/tls-certificates.js';
import { SmtpListener } from './smtp-listener.js';
import { SmtpSessionHandler } from './smtp-session-handler.js';
import { UpstreamConnector } from './upstream-connector.js';
import { UpstreamPool } from './upstream-pool.js';

export interface SmtpGatewayDeps {
  authenticator: Authenticator;
  tokens: TokenProvider;
  messages: MessageLimiter;
  store: CredentialStore;
  tls: TlsCertificates;
  metrics: SmtpMetrics;
  log: EventLogger;
  hostname: string;
  maxFailuresPerConnection: number;
  /** Counts refused connections. */
  connections: ConnectionMetrics;
  /** `rate_limit.trusted_networks`: exempt from the per-address connection cap. */
  trustedNetworks: readonly string[];
  /** Ends sessions of revoked, expired or turned-off passwords (the one IMAP uses too). */
  registry: LiveSessionRegistry;
}

/** SMTP submission: the listeners, the session handler and the upstream pool, started and stopped together. */
export class SmtpGateway {
  readonly pool: UpstreamPool;
  readonly listeners: SmtpListener[];

  constructor(config: SmtpConfig, deps: SmtpGatewayDeps) {
    const upstream = config.upstream;
    const connector = new UpstreamConnector(upstream, deps.tokens, deps.hostname, deps.metrics.upstream);
    this.pool = new UpstreamPool(
      (mailbox) => connector.open(mailbox),
      {
        maxPerMailbox: upstream.max_connections_per_mailbox,
        waitMs: upstream.wait_seconds * 1000,
        idleMs: upstream.idle_seconds * 1000,
        onWaitTimeout: () => deps.metrics.poolWaitTimedOut(),
      },
      deps.log,
    );
    const handler: SmtpSessionHandler = new SmtpSessionHandler(
      {
        authenticator: deps.authenticator,
        pool: this.pool,
        messages: deps.messages,
        store: deps.store,
        registry: deps.registry,
        metrics: deps.metrics,
        log: deps.log,
        closeConnection: (session, reply) => this.listeners.forEach((l) => l.closeSession(session, reply)),
      },
      { maxFailuresPerConnection: deps.maxFailuresPerConnection, maxMessageBytes: config.max_message_bytes },
    );
    // One gate for every SMTP listener of this process: the caps are per protocol, not per port.
    const gate = new ConnectionGate(
      'smtp',
      new ConnectionLimiter({ maxTotal: config.max_connections, maxPerIp: config.max_connections_per_ip, exempt: new NetworkList(deps.trustedNetworks) }),
      { metrics: deps.connections, log: deps.log, clock: Date.now },
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
          gate,
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
    await this.pool.close();
  }
}
