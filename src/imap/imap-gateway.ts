import { readFileSync } from 'node:fs';
import type { ImapConfig } from '../config/config-schema.js';
import type { Authenticator } from '../core/authenticator.js';
import type { CredentialStore } from '../core/credential-store.js';
import type { ConnectionMetrics } from '../core/connection-metrics.js';
import { ConnectionLimiter } from '../core/connection-limiter.js';
import { NetworkList } from '../core/network-list.js';
import { ConnectionGate } from '../net/connection-gate.js';
import type { EventLogger } from '../core/event-logger.js';
import { GatewayError } from '../core/gateway-error.js';
import type { ImapMetrics } from '../core/imap-metrics.js';
import type { LiveSessionRegistry } from '../core/live-session-registry.js';
import type { TokenProvider } from '../core/token-provider.js';
import type { TlsCertificates } from '../tls/tls-certificates.js';
import { ImapListener } from './imap-listener.js';

export interface ImapGatewayDeps {
  authenticator: Authenticator;
  tokens: TokenProvider;
  store: CredentialStore;
  tls: TlsCertificates;
  metrics: ImapMetrics;
  log: EventLogger;
  maxFailuresPerConnection: number;
  /** Counts refused connections. */
  connections: ConnectionMetrics;
  /** `rate_limit.trusted_networks`: exempt from the per-address connection cap. */
  trustedNetworks: readonly string[];
  /** Ends sessions of revoked, expired or turned-off passwords; shared with SMTP, started by the composition root. */
  registry: LiveSessionRegistry;
}

/** IMAP: the listeners, started and stopped together; sessions register with the shared LiveSessionRegistry. */
export class ImapGateway {
  readonly registry: LiveSessionRegistry;
  readonly listeners: ImapListener[];

  constructor(config: ImapConfig, deps: ImapGatewayDeps) {
    const upstream = config.upstream;
    let ca: string | undefined;
    try {
      ca = upstream.ca_file === null ? undefined : readFileSync(upstream.ca_file, 'utf8');
    } catch (cause) {
      throw new GatewayError('PG_CONFIG_INVALID', `imap.upstream.ca_file: cannot read ${upstream.ca_file}: ${(cause as Error).message}`, { cause });
    }
    this.registry = deps.registry;
    const sessionDeps = {
      authenticator: deps.authenticator,
      tokens: deps.tokens,
      registry: this.registry,
      metrics: deps.metrics,
      log: deps.log,
      upstream: {
        host: upstream.host,
        port: upstream.port,
        tls: upstream.tls,
        ca,
        servername: upstream.servername ?? upstream.host,
        timeoutMs: upstream.connect_timeout_seconds * 1000,
      },
    };
    const options = {
      maxFailures: deps.maxFailuresPerConnection,
      maxCommands: config.max_commands_before_login,
      loginTimeoutMs: config.login_timeout_seconds * 1000,
      idleTimeoutMs: config.idle_timeout_minutes * 60_000,
    };
    // One gate for every IMAP listener of this process: the caps are per protocol, not per port.
    const gate = new ConnectionGate(
      'imap',
      new ConnectionLimiter({ maxTotal: config.max_connections, maxPerIp: config.max_connections_per_ip, exempt: new NetworkList(deps.trustedNetworks) }),
      { metrics: deps.connections, log: deps.log, clock: Date.now },
    );
    this.listeners = config.listeners.map((listener) => new ImapListener(listener, deps.tls, sessionDeps, options, gate));
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
