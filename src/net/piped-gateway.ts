import type { TlsCertificates } from '../tls/tls-certificates.js';
import type { ConnectionGate } from './connection-gate.js';
import type { PipedProtocol, PipedProtocolConfig, PipedSessionDeps } from './piped-protocol.js';
import { SessionListener } from './session-listener.js';

export interface PipedGatewayDeps<M> extends PipedSessionDeps<M> {
  tls: TlsCertificates;
  maxFailuresPerConnection: number;
  /** The protocol's connection caps: one gate for every listener of the protocol in this process. */
  gate: ConnectionGate;
}

/**
 * A piped protocol's listeners (IMAP, POP3), started and stopped together; sessions register with the shared
 * LiveSessionRegistry.
 */
export class PipedGateway<S extends { start(): void }, M> {
  readonly registry: PipedSessionDeps<M>['registry'];
  readonly listeners: SessionListener<S, M>[];

  constructor(config: PipedProtocolConfig, deps: PipedGatewayDeps<M>, protocol: PipedProtocol<S, M>) {
    this.registry = deps.registry;
    const { authenticator, upstream, registry, metrics, log } = deps;
    const settings = {
      maxFailures: deps.maxFailuresPerConnection,
      maxCommands: config.max_commands_before_login,
      loginTimeoutMs: config.login_timeout_seconds * 1000,
      idleTimeoutMs: config.idle_timeout_minutes * 60_000,
    };
    this.listeners = config.listeners.map(
      (listener) => new SessionListener(listener, deps.tls, protocol, { authenticator, upstream, registry, metrics, log }, settings, deps.gate),
    );
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
