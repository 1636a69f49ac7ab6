import { randomBytes } from 'node:crypto';
import type { AddressInfo, Socket } from 'node:net';
import type { SMTPServerSession } from 'smtp-server';
import type { SMTPConnection } from 'smtp-server/lib/smtp-connection.js';
import type { ListenerConfig } from '../config/config-schema.js';
import type { EventLogger } from '../core/event-logger.js';
import { NetworkList } from '../core/network-list.js';
import { acceptClient } from '../net/accept-client.js';
import type { ConnectionGate } from '../net/connection-gate.js';
import { TcpListener } from '../net/tcp-listener.js';
import type { TlsCertificates } from '../tls/tls-certificates.js';
import { PromptSmtpServer } from './prompt-smtp-server.js';
import { SMTP_REPLIES, smtpError } from './smtp-replies.js';
import type { SmtpSessionHandler } from './smtp-session-handler.js';

export interface SmtpListenerDeps {
  handler: SmtpSessionHandler;
  tls: TlsCertificates;
  hostname: string;
  maxMessageBytes: number;
  maxRecipients: number;
  log: EventLogger;
  /** The SMTP connection caps, shared by every SMTP listener. */
  gate: ConnectionGate;
  /** `smtp.login_timeout_seconds` in ms: from the TCP accept to a successful AUTH. */
  loginTimeoutMs: number;
}

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
  private readonly smtp: PromptSmtpServer;
  private readonly proxies: NetworkList;
  private readonly plaintextAuth: NetworkList;
  private closing = false;
  /** Per connection id: what its end must undo (the connection slot, the login deadline). */
  private readonly connectionEnds = new Map<string, () => void>();
  /**
   * Per connection id: hooks (AUTH, MAIL, RCPT, DATA) called and not yet answered. With the envelope's sender it
   * says whether a transaction is in flight at shutdown, from smtp-server's public hooks alone.
   */
  private readonly pendingHooks = new Map<string, number>();
  private closed: Promise<void> | undefined;
  private stopWatchingCertificates: () => void = () => {};

  constructor(
    readonly config: ListenerConfig,
    private readonly deps: SmtpListenerDeps,
  ) {
    this.proxies = new NetworkList(config.proxy_protocol_from);
    this.plaintextAuth = new NetworkList(config.plaintext_auth_from);
    const { handler } = deps;
    const tlsOptions = config.tls === 'none' ? {} : deps.tls.serverOptions(config.min_tls_version);
    // Greets at once: no early-talker pause before the greeting (see PromptSmtpServer).
    this.smtp = new PromptSmtpServer({
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
      // smtp-server would look up every client's PTR record before the greeting (up to 1.5 s, and a flood's worth
      // of DNS queries the client's own DNS server can slow down); passgate uses the name nowhere.
      disableReverseLookup: true,
      logger: false,
      onAuth: (auth, session, callback) => {
        if (config.tls === 'none' && !session.secure && !this.plaintextAuth.contains(session.remoteAddress)) {
          return callback(smtpError(SMTP_REPLIES.encryptionRequired));
        }
        const answer = this.pending(session.id, callback);
        handler.onAuth(auth, session, answer).catch((error: Error) => answer(this.unexpected(error, SMTP_REPLIES.authInternal)));
      },
      onMailFrom: (address, session, callback) => {
        // While draining, a transaction in flight may finish but no new one starts (421 closes the connection).
        if (this.closing) return callback(smtpError(SMTP_REPLIES.shuttingDown));
        const answer = this.pending(session.id, callback);
        handler.onMailFrom(address, session, answer).catch((error: Error) => answer(this.unexpected(error, SMTP_REPLIES.internal)));
      },
      onRcptTo: (address, session, callback) => {
        const answer = this.pending(session.id, callback);
        handler.onRcptTo(address, session, answer).catch((error: Error) => answer(this.unexpected(error, SMTP_REPLIES.internal)));
      },
      // DATA: from the 354 to the upstream's verdict (the handler answers only once the message is read).
      onData: (stream, session, callback) => {
        const answer = this.pending(session.id, callback);
        handler.onData(stream, session, answer).catch((error: Error) => answer(this.unexpected(error, SMTP_REPLIES.internal)));
      },
      onClose: (session) => {
        this.connectionEnded(session.id);
        this.pendingHooks.delete(session.id);
        handler.onClose(session);
      },
      // security (issue 17): EHLO offers AUTH only where it would be accepted: over TLS, or from a plaintext
      // listener's listed networks (RFC 3207 §4.2, RFC 8314).
    }, (secure, ip) => secure || (config.tls === 'none' && this.plaintextAuth.contains(ip)));
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

  /** Counts a hook as unanswered until its callback is called (once). */
  private pending<A extends unknown[]>(id: string, callback: (...args: A) => void): (...args: A) => void {
    this.pendingHooks.set(id, (this.pendingHooks.get(id) ?? 0) + 1);
    let answered = false;
    return (...args: A) => {
      if (!answered) {
        answered = true;
        const left = (this.pendingHooks.get(id) ?? 1) - 1;
        if (left > 0) this.pendingHooks.set(id, left);
        else this.pendingHooks.delete(id);
      }
      callback(...args);
    };
  }

  /** A transaction is in flight: a hook not yet answered (AUTH, MAIL, RCPT, DATA), or a sender accepted. */
  private inTransaction(connection: SMTPConnection): boolean {
    return this.pendingHooks.has(connection.id) || Boolean(connection.session.envelope.mailFrom);
  }

  /** Closes the client connection of a session (after too many failed logins); with `reply` (a 421), says it first. */
  closeSession(session: SMTPServerSession, reply?: { code: number; text: string }): void {
    for (const connection of this.smtp.connections) {
      if (connection.id !== session.id) continue;
      if (reply) connection.send(reply.code, reply.text); // a 421 closes the connection (smtp-server SMTPConnection#send)
      else connection.close();
    }
  }

  private async accept(raw: Socket): Promise<void> {
    if (this.closing) return void raw.destroy();
    const deadline = Date.now() + this.deps.loginTimeoutMs;
    try {
      const outcome = await acceptClient(raw, {
        listener: this.config.name,
        proxies: this.proxies,
        implicitTls: this.config.tls === 'implicit' ? this.deps.tls.serverOptions(this.config.min_tls_version) : null,
        deadline,
        gate: this.deps.gate,
        refusalLine: (reason) => {
          const reply = reason === 'per-ip' ? SMTP_REPLIES.tooManyConnectionsFromIp : SMTP_REPLIES.tooManyConnections;
          return `${reply.code} ${reply.text}`;
        },
      });
      if (outcome.kind === 'refused') return;
      const { socket, clientIp, clientPort, release } = outcome.client;
      // Shutdown may have begun during the PROXY header or the TLS handshake: such a connection must not start.
      if (this.closing) return void socket.destroy();
      const id = randomBytes(10).toString('base64url');
      this.deps.handler.summaries.opened(id, this.config.name, clientIp, raw);
      const deadlineTimer = this.enforceLoginDeadline(id, deadline);
      // smtp-server's onClose fires once per connection, however it ends; the raw socket's own 'close' cannot be
      // relied on here, since smtp-server's STARTTLS removes every listener of the socket it upgrades.
      let connection: SMTPConnection | null = null;
      this.connectionEnds.set(id, () => {
        clearTimeout(deadlineTimer);
        release();
        if (connection && PromptSmtpServer.handshakeFailed(connection)) this.deps.handler.summaries.closing(id, 'tls-failed');
      });
      connection = this.smtp.connect(socket, { id, remoteAddress: clientIp, remotePort: clientPort });
    } catch (error) {
      this.deps.log.warn({ listener: this.config.name, peer: raw.remoteAddress, cause: (error as Error).message }, 'connection dropped before the session');
    }
  }

  /**
   * smtp-server's socketTimeout is an idle timeout, reset by every byte: a client trickling a byte a second would
   * never meet it. A connection not logged in by the deadline (counted from the TCP accept) is told 421 and closed,
   * so an idle or trickling client holds its slot for `login_timeout_seconds` at most.
   */
  private enforceLoginDeadline(id: string, deadline: number): NodeJS.Timeout {
    const timer = setTimeout(() => {
      for (const connection of this.smtp.connections) {
        // send() with 421 closes the connection (smtp-server SMTPConnection#send).
        if (connection.id === id && !connection.session.user) {
          this.deps.handler.summaries.closing(id, 'login-timeout');
          connection.send(SMTP_REPLIES.loginTimeout.code, SMTP_REPLIES.loginTimeout.text);
        }
      }
    }, Math.max(0, deadline - Date.now()));
    return timer.unref();
  }

  /** A connection ended (smtp-server's onClose): its slot and its login deadline go. */
  private connectionEnded(id: string): void {
    this.connectionEnds.get(id)?.();
    this.connectionEnds.delete(id);
  }

  /**
   * Graceful shutdown. Stops accepting at once. A connection without a transaction in flight is told 421 and
   * closed now; one with a transaction (MAIL accepted, a command being answered, or DATA streaming or awaiting the
   * upstream's verdict) may finish it for up to `graceMs` and gets its reply, the upstream's 250 included, then
   * 421. No new transaction starts meanwhile (MAIL is answered 421, see onMailFrom). At the deadline the rest are
   * told 421 and closed; a message cut before its final "." is not delivered (the upstream DATA is aborted).
   * RFC 5321 §3.8: a server shutting down answers 421 and closes the channel.
   */
  close(graceMs: number): Promise<void> {
    this.closed ??= this.drain(graceMs);
    return this.closed;
  }

  private async drain(graceMs: number): Promise<void> {
    this.closing = true;
    this.stopWatchingCertificates();
    const stopped = this.server.close();
    const deadline = Date.now() + graceMs;
    for (;;) {
      for (const connection of this.smtp.connections) {
        if (!this.inTransaction(connection)) this.shutDown(connection);
      }
      if (this.smtp.connections.size === 0 || Date.now() >= deadline) break;
      await new Promise((r) => setTimeout(r, 50));
    }
    for (const connection of this.smtp.connections) this.shutDown(connection);
    await stopped;
  }

  /** 421 and close (smtp-server closes the connection itself after any 421, see send()); logged as `shutdown`. */
  private shutDown(connection: SMTPConnection): void {
    this.deps.handler.summaries.closing(connection.id, 'shutdown');
    connection.send(SMTP_REPLIES.shuttingDown.code, SMTP_REPLIES.shuttingDown.text);
  }
}
