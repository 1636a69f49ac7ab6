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
    if (this.authAllowed) hideAuthUntilAllowed(connection, this.authAllowed);
    this.connections.add(connection);
    connection.on('error', (error: Error) => this._onError(error));
    connection.on('connect', (data) => this._onClientConnect(data));
    connection._setListeners(() => connection.connectionReady());
    return connection;
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
