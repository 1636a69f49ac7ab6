import { randomBytes } from 'node:crypto';
import type { AddressInfo, Socket } from 'node:net';
import type { ListenerConfig } from '../config/config-schema.js';
import type { ConnectionRefusal } from '../core/connection-limiter.js';
import type { EventLogger } from '../core/event-logger.js';
import { NetworkList } from '../core/network-list.js';
import type { Protocol } from '../core/protocol.js';
import type { TlsCertificates } from '../tls/tls-certificates.js';
import { acceptClient } from './accept-client.js';
import type { ConnectionGate } from './connection-gate.js';
import { TcpListener } from './tcp-listener.js';

/** The client a session is made for: its real address (after PROXY), TLS state, an id, and the raw TCP socket. */
export interface AcceptedClient {
  ip: string;
  port: number;
  secure: boolean;
  id: string;
  wire: Socket;
}

export interface SessionListenerOptions<S> {
  protocol: Protocol;
  /** From the TCP accept to a successful login (the PROXY header and the TLS handshake count against it). */
  loginTimeoutMs: number;
  log: EventLogger;
  /** The protocol's connection caps, shared by every listener of the protocol. */
  gate: ConnectionGate;
  /** The protocol's one-line refusal of a connection over the caps (from its reply table). */
  refusalLine: (reason: ConnectionRefusal) => string;
  /** Makes the protocol's session for an accepted client, with what is left of the login deadline. */
  createSession: (socket: Socket, client: AcceptedClient, loginTimeoutMs: number) => S;
  /** Ends a session at shutdown, in the protocol's words. */
  endAtShutdown: (session: S) => void;
}

/**
 * One listener of a protocol whose sessions become a byte pipe after login (IMAP, POP3): accept, PROXY header,
 * connection caps, implicit TLS (net/accept-client.ts), then the protocol's session, tracked until it closes so
 * shutdown can end it. The protocol brings its session and its words; everything else is the same for both.
 */
export class SessionListener<S extends { start(): void }> {
  private readonly server: TcpListener;
  private readonly proxies: NetworkList;
  private readonly sessions = new Set<S>();
  private closing = false;

  constructor(
    readonly config: ListenerConfig,
    private readonly tls: TlsCertificates,
    private readonly options: SessionListenerOptions<S>,
  ) {
    this.proxies = new NetworkList(config.proxy_protocol_from);
    this.server = new TcpListener(config, options.protocol, options.log, (socket) => void this.accept(socket));
  }

  listen(): Promise<AddressInfo> {
    return this.server.listen();
  }

  get port(): number {
    return this.server.port;
  }

  private async accept(raw: Socket): Promise<void> {
    if (this.closing) return void raw.destroy();
    const deadline = Date.now() + this.options.loginTimeoutMs;
    let outcome;
    try {
      outcome = await acceptClient(raw, {
        listener: this.config.name,
        proxies: this.proxies,
        implicitTls: this.config.tls === 'implicit' ? this.tls.serverOptions(this.config.min_tls_version) : null,
        deadline,
        gate: this.options.gate,
        refusalLine: this.options.refusalLine,
      });
    } catch (error) {
      this.options.log.warn({ listener: this.config.name, peer: raw.remoteAddress, cause: (error as Error).message }, 'connection dropped before the session');
      return;
    }
    if (outcome.kind === 'refused') return;
    const accepted = outcome.client;
    // Shutdown may have begun during the PROXY header or the TLS handshake: such a connection must not start.
    if (this.closing) return void accepted.socket.destroy();
    const session = this.options.createSession(
      accepted.socket,
      { ip: accepted.clientIp, port: accepted.clientPort, secure: accepted.secure, id: randomBytes(10).toString('base64url'), wire: raw },
      // The login deadline runs from the TCP accept: the PROXY header and the TLS handshake have used part of it.
      Math.max(0, deadline - Date.now()),
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
    for (const session of this.sessions) this.options.endAtShutdown(session);
    await stopped;
  }
}
