import { randomBytes } from 'node:crypto';
import type { AddressInfo, Socket } from 'node:net';
import type { ListenerConfig } from '../config/config-schema.js';
import { NetworkList } from '../core/network-list.js';
import { acceptClient } from '../net/accept-client.js';
import type { ConnectionGate } from '../net/connection-gate.js';
import { TcpListener } from '../net/tcp-listener.js';
import type { TlsCertificates } from '../tls/tls-certificates.js';
import { POP3_REPLIES } from './pop3-replies.js';
import { Pop3Session, type Pop3SessionDeps, type Pop3SessionOptions } from './pop3-session.js';

/** One POP3 listener (110 STLS, 995 implicit TLS, or a plaintext LAN port): accept, PROXY, TLS, session. */
export class Pop3Listener {
  private readonly server: TcpListener;
  private readonly proxies: NetworkList;
  private readonly sessions = new Set<Pop3Session>();
  private closing = false;
  /** What every session of this listener shares (one per listener, not one held by each session). */
  private readonly sessionOptions: Omit<Pop3SessionOptions, 'loginTimeoutMs'>;

  constructor(
    readonly config: ListenerConfig,
    private readonly tls: TlsCertificates,
    private readonly deps: Pop3SessionDeps,
    private readonly options: Omit<Pop3SessionOptions, 'listener' | 'tlsMode' | 'tlsOptions' | 'plaintextAuth'>,
    /** The POP3 connection caps, shared by every POP3 listener. */
    private readonly gate: ConnectionGate,
  ) {
    this.proxies = new NetworkList(config.proxy_protocol_from);
    this.sessionOptions = {
      ...options,
      listener: config.name,
      tlsMode: config.tls,
      tlsOptions: () => this.tls.serverOptions(this.config.min_tls_version),
      plaintextAuth: new NetworkList(config.plaintext_auth_from),
    };
    this.server = new TcpListener(config, 'pop3', deps.log, (socket) => void this.accept(socket));
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
        gate: this.gate,
        refusalLine: (reason) => (reason === 'per-ip' ? POP3_REPLIES.tooManyConnectionsFromIp : POP3_REPLIES.tooManyConnections),
      });
    } catch (error) {
      this.deps.log.warn({ listener: this.config.name, peer: raw.remoteAddress, cause: (error as Error).message }, 'connection dropped before the session');
      return;
    }
    if (outcome.kind === 'refused') return;
    const accepted = outcome.client;
    // Shutdown may have begun during the PROXY header or the TLS handshake: such a connection must not start.
    if (this.closing) return void accepted.socket.destroy();
    const session = new Pop3Session(
      accepted.socket,
      { ip: accepted.clientIp, port: accepted.clientPort, secure: accepted.secure, id: randomBytes(10).toString('base64url'), wire: raw },
      this.deps,
      // The login deadline runs from the TCP accept: the PROXY header and the TLS handshake have used part of it.
      { ...this.sessionOptions, loginTimeoutMs: Math.max(0, deadline - Date.now()) },
    );
    this.sessions.add(session);
    accepted.socket.once('close', () => this.sessions.delete(session));
    session.start();
  }

  /** Stops accepting and ends every session: `-ERR` before login, a plain close of the pipe after it. */
  async close(): Promise<void> {
    if (this.closing) return;
    this.closing = true;
    const stopped = this.server.close();
    for (const session of this.sessions) session.end(POP3_REPLIES.shutdown);
    await stopped;
  }
}
