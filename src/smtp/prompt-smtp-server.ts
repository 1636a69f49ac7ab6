import type { Socket } from 'node:net';
import type { TLSSocket } from 'node:tls';
import { SMTPServer, type SMTPServerOptions } from 'smtp-server';
import { SMTPConnection, type SMTPConnectionOptions } from 'smtp-server/lib/smtp-connection.js';
import { hideAuthUntilAllowed } from './ehlo-auth-visibility.js';

/**
 * smtp-server's SMTPServer, but a new connection is greeted at once. smtp-server (3.x, SMTPConnection#init) always
 * waits 100 ms before the greeting, to catch spam bots that talk first on port 25. On a submission port every
 * client must log in before it can send anything, so the pause guards nothing, and it costs every connection
 * 100 ms: a scanner or script that opens a connection per message is held to ~10 messages a second. A client that
 * still talks before the greeting is answered `421 You talk too soon` by smtp-server, as before.
 *
 * This is smtp-server's own connect() with init() replaced by what init() does minus the timer (the maxClients
 * check is not needed: passgate's connection gate caps connections before a socket gets here).
 */
export class PromptSmtpServer extends SMTPServer {
  /** `authAllowed`: EHLO lists AUTH only where it says yes (security: no AUTH offered before TLS, ehlo-auth-visibility.ts). */
  constructor(
    options: SMTPServerOptions,
    private readonly authAllowed: ((secure: boolean, remoteAddress: string) => boolean) | null = null,
  ) {
    super(options);
  }

  /** Returns the connection, so the listener can tell later how it ended (a STARTTLS handshake that failed). */
  override connect(socket: Socket | TLSSocket, socketOptions?: SMTPConnectionOptions | null): SMTPConnection {
    const connection = new SMTPConnection(this, socket, socketOptions);
    PromptSmtpServer.coalesceReplies(connection);
    if (this.authAllowed) hideAuthUntilAllowed(connection, this.authAllowed);
    this.connections.add(connection);
    connection.on('error', (error: Error) => this._onError(error));
    connection.on('connect', (data) => this._onClientConnect(data));
    connection._setListeners(() => connection.connectionReady());
    return connection;
  }

  /**
   * Replies written in one turn of the event loop go out in one write (one TLS record, one system call): a
   * pipelining client's RCPT reply and the 354 to its DATA, a final 250 and the 221 to a QUIT behind it. smtp-server
   * (3.x, SMTPConnection#send) writes each reply to `_socket` on its own; this wraps one connection's send() to cork
   * the socket and uncork it when the turn ends. Not for a 220 (the greeting, and STARTTLS's go-ahead, after which
   * the socket is wrapped in TLS: it must be out first). A 421 closes with end(), which uncorks. Tested by
   * smtp-coalesced-writes.test.ts (one read on the client for the replies of a pipelined group), which fails if an
   * upgrade renames send() or `_socket`.
   */
  static coalesceReplies(connection: SMTPConnection): void {
    const c = connection as unknown as { send: (code: number, ...rest: unknown[]) => void; _socket?: Socket | TLSSocket };
    const send = c.send;
    if (typeof send !== 'function') throw new Error('smtp-server changed: SMTPConnection#send is gone (see prompt-smtp-server.ts)');
    c.send = function (this: typeof c, code: number, ...rest: unknown[]) {
      const socket = this._socket;
      if (code !== 220 && socket && !socket.destroyed && socket.writableCorked === 0) {
        socket.cork();
        process.nextTick(() => socket.uncork());
      }
      return send.call(this, code, ...rest);
    };
  }

  /**
   * Whether a connection that closed was in the middle of its STARTTLS handshake (logged as tls-failed).
   * smtp-server has no event for a failed upgrade; SMTPConnection#upgrade sets `_upgrading` and clears it once the
   * handshake is done, so still set at the close, the handshake failed or the client left during it. Tested by
   * doctor-and-startup.test.ts (a failed STARTTLS is tls-failed), which fails if an upgrade renames the field.
   */
  static handshakeFailed(connection: SMTPConnection): boolean {
    return connection._upgrading === true;
  }
}
