import type { Pop3Config } from '../config/config-schema.js';
import type { Authenticator } from '../core/authenticator.js';
import type { EventLogger } from '../core/event-logger.js';
import type { Pop3Metrics } from '../core/pop3-metrics.js';
import type { LiveSessionRegistry } from '../core/live-session-registry.js';
import type { MailboxUpstream } from '../core/ports/mailbox-upstream.js';
import type { ConnectionGate } from '../net/connection-gate.js';
import type { TlsCertificates } from '../tls/tls-certificates.js';
import type { SessionListener } from '../net/session-listener.js';
import { pop3Listener } from './pop3-listener.js';
import type { Pop3Session } from './pop3-session.js';

export interface Pop3GatewayDeps {
  authenticator: Authenticator;
  /** Where mailboxes are opened (the composition root picks the implementation: the POP3 login today). */
  upstream: MailboxUpstream;
  /** Ends sessions of revoked, expired or turned-off passwords; shared with SMTP, started by the composition root. */
  registry: LiveSessionRegistry;
  tls: TlsCertificates;
  metrics: Pop3Metrics;
  log: EventLogger;
  maxFailuresPerConnection: number;
  /** The POP3 connection caps: one gate for every POP3 listener of this process (per protocol, not per port). */
  gate: ConnectionGate;
}

/** POP3: the listeners, started and stopped together; sessions register with the shared LiveSessionRegistry. */
export class Pop3Gateway {
  readonly registry: LiveSessionRegistry;
  readonly listeners: SessionListener<Pop3Session>[];

  constructor(config: Pop3Config, deps: Pop3GatewayDeps) {
    this.registry = deps.registry;
    const sessionDeps = {
      authenticator: deps.authenticator,
      upstream: deps.upstream,
      registry: deps.registry,
      metrics: deps.metrics,
      log: deps.log,
    };
    const options = {
      maxFailures: deps.maxFailuresPerConnection,
      maxCommands: config.max_commands_before_login,
      loginTimeoutMs: config.login_timeout_seconds * 1000,
      idleTimeoutMs: config.idle_timeout_minutes * 60_000,
    };
    this.listeners = config.listeners.map((listener) => pop3Listener(listener, deps.tls, sessionDeps, options, deps.gate));
  }

  async start(): Promise<void> {
    for (const listener of this.listeners) await listener.listen();
  }

  ports(): Record<string, number> {
    return Object.fromEntries(this.listeners.map((l) => [l.config.name, l.port]));
  }

  async close(): Promise<void> {
    await Promise.all(this.listeners.map((l) => l.close()));
  }
}
