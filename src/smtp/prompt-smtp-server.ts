import type { Socket } from 'node:net';
import type { TLSSocket } from 'node:tls';
import { SMTPServer, type SMTPServerOptions, type SMTPServerSession } from 'smtp-server';
import { SMTPConnection, type SMTPConnectionOptions } from 'smtp-server/lib/smtp-connection.js';
import { CommandLookahead } from './command-lookahead.js';
import { hideAuthUntilAllowed } from './ehlo-auth-visibility.js';

/** The parser of smtp-server (3.x, SMTPStream) as far as PromptSmtpServer.lookAhead reads it. */
interface CommandParser {
  _write: (chunk: Buffer, encoding: BufferEncoding, next: (error?: Error | null) => void) => void;
  oncommand: (line: Buffer, callback?: () => void) => void;
  _dataMode: boolean;
}

/** Each connection's lookahead, by its session object (smtp-server keeps one per connection and resets it in place). */
const lookaheads = new WeakMap<SMTPServerSession, CommandLookahead>();

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
    PromptSmtpServer.lookAhead(connection);
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
   * smtp-bdat-wire.test.ts, "replies to a pipelined group" (one read on the client for the replies of a pipelined group), which fails if an
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
   * The next command line the client has already sent, behind the one being handled (RFC 2920 pipelining), or null
   * when none is there yet or this cannot tell. Read by the session handler to send DATA upstream early.
   */
  static nextCommand(session: SMTPServerSession): string | null {
    return lookaheads.get(session)?.next() ?? null;
  }

  /**
   * Feeds a CommandLookahead with what smtp-server's parser takes in and hands out. The parser (SMTPStream) keeps
   * the rest of a chunk in a closure while a command's handler runs, so this wraps its `_write` (each chunk, and
   * whether it is in data mode) and its `oncommand` (each line); STARTTLS retires the parser and makes a new one
   * (`_createParser`), which is wrapped too, with a fresh lookahead. Tested by smtp-bdat-wire.test.ts, "DATA ahead" (DATA goes
   * upstream in one write with the last RCPT), which fails if an upgrade renames `_write`, `oncommand` or `_parser`.
   */
  static lookAhead(connection: SMTPConnection): void {
    const c = connection as unknown as { _parser?: CommandParser; _createParser?: () => CommandParser; session: SMTPServerSession };
    if (typeof c._createParser !== 'function' || !c._parser) throw new Error('smtp-server changed: SMTPConnection#_createParser or _parser is gone (see prompt-smtp-server.ts)');
    const watch = (parser: CommandParser): CommandParser => {
      const lookahead = new CommandLookahead();
      lookaheads.set(c.session, lookahead);
      const write = parser._write;
      const oncommand = parser.oncommand;
      parser._write = function (this: CommandParser, chunk, encoding, next) {
        if (this._dataMode) lookahead.forget();
        else lookahead.received(chunk.toString('latin1'));
        return write.call(this, chunk, encoding, next);
      };
      parser.oncommand = function (this: CommandParser, line, callback) {
        lookahead.dispatched(line.toString('latin1'));
        return oncommand.call(this, line, callback);
      };
      return parser;
    };
    watch(c._parser);
    const create = c._createParser;
    c._createParser = function (this: typeof c) {
      return watch(create.call(this));
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
