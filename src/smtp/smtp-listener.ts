import { randomBytes } from 'node:crypto';
import type { AddressInfo, Socket } from 'node:net';
import { SMTPServer, type SMTPServerSession } from 'smtp-server';
import type { ListenerConfig } from '../config/config-schema.js';
import type { EventLogger } from '../core/event-logger.js';
import { NetworkList } from '../core/network-list.js';
import { acceptClient } from '../net/accept-client.js';
import { TcpListener } from '../net/tcp-listener.js';
import type { TlsCertificates } from '../tls/tls-certificates.js';
import { SMTP_REPLIES, smtpError } from './smtp-replies.js';
import type { SmtpSessionHandler } from './smtp-session-handler.js';

export interface SmtpListenerDeps {
  handler: SmtpSessionHandler;
  tls: TlsCertificates;
  hostname: string;
  maxMessageBytes: number;
  maxRecipients: number;
  log: EventLogger;
}

const PRE_SESSION_TIMEOUT_MS = 10_000;
/** RFC 5321 §4.5.3.2.7: a server should wait at least 5 minutes for the next command. */
const SOCKET_TIMEOUT_MS = 5 * 60_000;

/**
 * One SMTP listener (587 STARTTLS, 465 implicit TLS, or a plaintext LAN port). passgate accepts the TCP
 * connection itself: it reads a PROXY v1/v2 header from listed load balancers, does the implicit TLS handshake,
 * and only then hands the socket to smtp-server with the real client address, so every later decision (limits,
 * allowed networks, the audit log) sees the client, not the balancer.
 */
export class SmtpListener {
  private readonly server: TcpListener;
  private readonly smtp: SMTPServer;
  private readonly proxies: NetworkList;
  private readonly plaintextAuth: NetworkList;
  private closing = false;
  private stopWatchingCertificates: () => void = () => {};

  constructor(
    readonly config: ListenerConfig,
    private readonly deps: SmtpListenerDeps,
  ) {
    this.proxies = new NetworkList(config.proxy_protocol_from);
    this.plaintextAuth = new NetworkList(config.plaintext_auth_from);
    const { handler } = deps;
    const tlsOptions = config.tls === 'none' ? {} : deps.tls.serverOptions(config.min_tls_version);
    this.smtp = new SMTPServer({
      ...tlsOptions,
      name: deps.hostname,
      banner: 'passgate ESMTP',
      secure: config.tls === 'implicit',
      // RFC 3207: STARTTLS only where it is configured; a plaintext listener offers no TLS at all.
      hideSTARTTLS: config.tls !== 'starttls',
      disabledCommands: config.tls === 'starttls' ? [] : ['STARTTLS'],
      authMethods: ['PLAIN', 'LOGIN'],
      // AUTH before TLS is refused by smtp-server on 587; a tls: none listener checks the client's network below.
      allowInsecureAuth: config.tls === 'none',
      size: deps.maxMessageBytes,
      maxRecipients: deps.maxRecipients,
      hideDSN: false,
      // passgate writes enhanced status codes into its reply texts itself, so upstream replies pass unchanged.
      hideENHANCEDSTATUSCODES: true,
      socketTimeout: SOCKET_TIMEOUT_MS,
      logger: false,
      onAuth: (auth, session, callback) => {
        if (config.tls === 'none' && !session.secure && !this.plaintextAuth.contains(session.remoteAddress)) {
          return callback(smtpError(SMTP_REPLIES.encryptionRequired));
        }
        handler.onAuth(auth, session, callback).catch((error: Error) => callback(this.unexpected(error, SMTP_REPLIES.authInternal)));
      },
      onMailFrom: (address, session, callback) =>
        void handler.onMailFrom(address, session, callback).catch((error: Error) => callback(this.unexpected(error, SMTP_REPLIES.internal))),
      onRcptTo: (address, session, callback) =>
        void handler.onRcptTo(address, session, callback).catch((error: Error) => callback(this.unexpected(error, SMTP_REPLIES.internal))),
      onData: (stream, session, callback) =>
        void handler.onData(stream, session, callback).catch((error: Error) => callback(this.unexpected(error, SMTP_REPLIES.internal))),
      onClose: (session) => handler.onClose(session),
    });
    this.smtp.on('error', (error: Error) => deps.log.warn({ listener: config.name, cause: error.message }, 'smtp connection error'));
    if (config.tls === 'starttls') {
      // smtp-server upgrades STARTTLS clients that send no SNI with its '*' context, built once from key/cert:
      // keep it the current default certificate, at this listener's minimum version, across reloads.
      const install = () => this.smtp.secureContext.set('*', deps.tls.secureContext(undefined, config.min_tls_version));
      install();
      this.stopWatchingCertificates = deps.tls.onChange(install);
    }
    this.server = new TcpListener(config, 'smtp', deps.log, (socket) => void this.accept(socket));
  }

  listen(): Promise<AddressInfo> {
    return this.server.listen();
  }

  get port(): number {
    return this.server.port;
  }

  /** A bug, not an answer: logged with its stack, and the client gets a temporary reply, never the error's text. */
  private unexpected(error: Error, reply: { code: number; text: string }): Error {
    this.deps.log.error({ listener: this.config.name, cause: error.message, stack: error.stack }, 'unexpected error in an smtp session');
    return smtpError(reply);
  }

  /** Closes the client connection of a session (after too many failed logins). */
  closeSession(session: SMTPServerSession): void {
    for (const connection of this.smtp.connections) {
      if ((connection as unknown as { id: string }).id === session.id) (connection as unknown as { close(): void }).close();
    }
  }

  private async accept(raw: Socket): Promise<void> {
    if (this.closing) return void raw.destroy();
    try {
      const { socket, clientIp, clientPort } = await acceptClient(raw, {
        proxies: this.proxies,
        implicitTls: this.config.tls === 'implicit' ? this.deps.tls.serverOptions(this.config.min_tls_version) : null,
        timeoutMs: PRE_SESSION_TIMEOUT_MS,
      });
      // Shutdown may have begun during the PROXY header or the TLS handshake: such a connection must not start.
      if (this.closing) return void socket.destroy();
      const id = randomBytes(10).toString('base64url');
      this.deps.handler.summaries.opened(id, this.config.name, clientIp, raw);
      this.smtp.connect(socket, { id, remoteAddress: clientIp, remotePort: clientPort } as never);
    } catch (error) {
      this.deps.log.warn({ listener: this.config.name, peer: raw.remoteAddress, cause: (error as Error).message }, 'connection dropped before the session');
    }
  }

  /**
   * Stops accepting; lets sessions finish for up to `graceMs` (a transaction in flight completes), then tells the
   * rest 421 and closes them.
   */
  async close(graceMs: number): Promise<void> {
    if (this.closing) return;
    this.closing = true;
    this.stopWatchingCertificates();
    const stopped = this.server.close();
    const deadline = Date.now() + graceMs;
    while (this.smtp.connections.size > 0 && Date.now() < deadline) await new Promise((r) => setTimeout(r, 50));
    for (const connection of this.smtp.connections) {
      const c = connection as unknown as { id: string; send(code: number, text: string): void; close(): void };
      this.deps.handler.summaries.closing(c.id, 'shutdown');
      c.send(SMTP_REPLIES.shuttingDown.code, SMTP_REPLIES.shuttingDown.text);
      c.close();
    }
    await stopped;
  }
}
