import { randomBytes } from 'node:crypto';
import type { AddressInfo, Socket } from 'node:net';
import type { ListenerConfig } from '../config/config-schema.js';
import { NetworkList } from '../core/network-list.js';
import type { TlsCertificates } from '../tls/tls-certificates.js';
import { acceptClient } from './accept-client.js';
import type { ConnectionGate } from './connection-gate.js';
import type { PipedProtocol, PipedSessionDeps, PipedSessionOptions } from './piped-protocol.js';
import { TcpListener } from './tcp-listener.js';

/**
 * One listener of a protocol whose sessions become a byte pipe after login (IMAP, POP3): accept, PROXY header,
 * connection caps, implicit TLS (net/accept-client.ts), then the protocol's session, tracked until it closes so
 * shutdown can end it. The protocol brings its session and its words; everything else is the same for both.
 */
export class SessionListener<S extends { start(): void }, M> {
  private readonly server: TcpListener;
  private readonly proxies: NetworkList;
  private readonly sessions = new Set<S>();
  /** What every session of this listener shares (one object per listener, not one per session). */
  private readonly shared: Omit<PipedSessionOptions, 'loginTimeoutMs'>;
  private readonly loginTimeoutMs: number;
  private closing = false;

  constructor(
    readonly config: ListenerConfig,
    private readonly tls: TlsCertificates,
    private readonly protocol: PipedProtocol<S, M>,
    private readonly deps: PipedSessionDeps<M>,
    settings: Pick<PipedSessionOptions, 'maxFailures' | 'maxCommands' | 'loginTimeoutMs' | 'idleTimeoutMs'>,
    /** The protocol's connection caps, shared by every listener of the protocol. */
    private readonly gate: ConnectionGate,
  ) {
    this.proxies = new NetworkList(config.proxy_protocol_from);
    this.loginTimeoutMs = settings.loginTimeoutMs;
    this.shared = {
      ...settings,
      listener: config.name,
      tlsMode: config.tls,
      tlsOptions: () => tls.serverOptions(config.min_tls_version),
      plaintextAuth: new NetworkList(config.plaintext_auth_from),
    };
    this.server = new TcpListener(config, protocol.name, deps.log, (socket) => void this.accept(socket));
  }

  listen(): Promise<AddressInfo> {
    return this.server.listen();
  }

  get port(): number {
    return this.server.port;
  }

  private async accept(raw: Socket): Promise<void> {
    if (this.closing) return void raw.destroy();
    const deadline = Date.now() + this.loginTimeoutMs;
    let outcome;
    try {
      outcome = await acceptClient(raw, {
        listener: this.config.name,
        proxies: this.proxies,
        implicitTls: this.config.tls === 'implicit' ? this.tls.serverOptions(this.config.min_tls_version) : null,
        deadline,
        gate: this.gate,
        refusalLine: (reason) => this.protocol.refusalLine(reason),
      });
    } catch (error) {
      this.deps.log.warn({ listener: this.config.name, peer: raw.remoteAddress, cause: (error as Error).message }, 'connection dropped before the session');
      return;
    }
    if (outcome.kind === 'refused') return;
    const accepted = outcome.client;
    // Shutdown may have begun during the PROXY header or the TLS handshake: such a connection must not start.
    if (this.closing) return void accepted.socket.destroy();
    const session = this.protocol.createSession(
      accepted.socket,
      { ip: accepted.clientIp, port: accepted.clientPort, secure: accepted.secure, id: randomBytes(10).toString('base64url'), wire: raw },
      this.deps,
      // The login deadline runs from the TCP accept: the PROXY header and the TLS handshake have used part of it.
      { ...this.shared, loginTimeoutMs: Math.max(0, deadline - Date.now()) },
    );
    this.sessions.add(session);
    accepted.socket.once('close', () => this.sessions.delete(session));
    session.start();
  }

  /** Stops accepting and ends every session in the protocol's words (these sessions have no transaction to wait for). */
  async close(): Promise<void> {
    if (this.closing) return;
    this.closing = true;
    const stopped = this.server.close();
    for (const session of this.sessions) this.protocol.endAtShutdown(session);
    await stopped;
  }
}
