import type { Socket } from 'node:net';
import type { ImapMetrics } from '../core/imap-metrics.js';
import type { AcceptedClient, PipedSessionDeps, PipedSessionOptions } from '../net/piped-protocol.js';
import type { SessionEnd } from '../core/session-metrics.js';
import { SessionSummary } from '../core/session-summary.js';
import { asAString, type ImapValue } from './imap-command-parser.js';
import { ImapLineReader, type ReaderEvent } from './imap-line-reader.js';
import { IMAP_LOGIN_REPLIES, IMAP_REPLIES, IMAP_UPSTREAM_LOGIN_REPLIES, imapLoginOk } from './imap-replies.js';
import type { MailboxSession } from '../core/ports/mailbox-upstream.js';
import { HANDSHAKE_TIMEOUT_MS } from '../net/accept-client.js';
import { completeServerTls, serverTlsSocket } from '../net/server-tls-handshake.js';
import { spliceSockets } from '../net/socket-splice.js';

export type ImapSessionDeps = PipedSessionDeps<ImapMetrics>;
export type ImapSessionOptions = PipedSessionOptions;

type CommandEvent = Extract<ReaderEvent, { type: 'command' }>;

/**
 * One IMAP connection before login, where passgate speaks IMAP itself (RFC 3501, RFC 9051): CAPABILITY, NOOP,
 * LOGOUT, STARTTLS, ID, LOGIN and AUTHENTICATE PLAIN/LOGIN, and BAD to anything else. A successful login opens the
 * mailbox upstream with XOAUTH2, answers with the upstream's capabilities, and turns the connection into a
 * byte pipe (socket-splice.ts); nothing of the session's own state outlives that moment.
 */
export class ImapSession {
  private reader = ImapSession.newReader();
  private secure: boolean;
  private failures = 0;
  private commands = 0;
  private closed = false;
  private handedOver = false;
  private queue: ReaderEvent[] = [];
  private running = false;
  private saslWaiter: ((line: string | null) => void) | null = null;
  /** Cleared (and dropped) once the session is logged in or closed. */
  private loginTimer: NodeJS.Timeout | undefined;
  private readonly onData = (chunk: Buffer) => this.dispatch(this.reader.push(chunk));
  private readonly summary: SessionSummary;

  /** `client.wire` is the TCP socket as accepted: the session is over when it closes. */
  constructor(
    private socket: Socket,
    private readonly client: AcceptedClient,
    private readonly deps: ImapSessionDeps,
    private readonly options: ImapSessionOptions,
  ) {
    this.secure = client.secure;
    this.loginTimer = setTimeout(() => this.bye(IMAP_REPLIES.loginTimeout, 'login-timeout'), options.loginTimeoutMs);
    this.summary = new SessionSummary({ session: client.id, protocol: 'imap', listener: options.listener, ip: client.ip }, client.wire, {
      metrics: deps.metrics.sessions,
      log: deps.log,
    });
    if (client.wire.destroyed) setImmediate(() => this.summary.end());
    else client.wire.once('close', () => this.summary.end());
  }

  /**
   * Room for what a client pipelines behind the command being answered (the socket is paused meanwhile, so at
   * most one more read arrives); a LOGIN followed by an APPEND with a literal needs more than the default.
   */
  private static newReader(): ImapLineReader {
    return new ImapLineReader({ maxPendingBytes: 256 * 1024 });
  }

  start(): void {
    this.attach(this.socket);
    this.write(`* OK [CAPABILITY ${this.capabilities()}] ${IMAP_REPLIES.greeting}`);
  }

  /** RFC 3501 §6.2.1: no AUTH= and LOGINDISABLED until TLS, or on a plaintext listener from an unlisted network. */
  private get loginAllowed(): boolean {
    return this.secure || (this.options.tlsMode === 'none' && this.options.plaintextAuth.contains(this.client.ip));
  }

  private capabilities(): string {
    const caps = ['IMAP4rev1', 'SASL-IR', 'LITERAL+', 'ID'];
    if (this.options.tlsMode === 'starttls' && !this.secure) caps.push('STARTTLS');
    caps.push(...(this.loginAllowed ? ['AUTH=PLAIN', 'AUTH=LOGIN'] : ['LOGINDISABLED']));
    return caps.join(' ');
  }

  private attach(socket: Socket): void {
    socket.on('data', this.onData);
    socket.on('error', () => this.close('client-closed'));
    socket.on('close', () => this.close('client-closed'));
  }

  /** Writes a reply; a client that does not read its replies stops being read (no unbounded queue). */
  private write(line: string): void {
    if (this.closed) return;
    if (!this.socket.write(`${line}\r\n`)) {
      this.socket.pause();
      this.socket.once('drain', () => {
        if (!this.handedOver && !this.running) this.socket.resume();
      });
    }
  }

  /** Events are handled one at a time, in order; a SASL line goes straight to the command waiting for it. */
  private dispatch(events: ReaderEvent[]): void {
    this.route(events);
    void this.run();
  }

  private route(events: ReaderEvent[]): void {
    for (const event of events) {
      if (event.type === 'sasl' && this.saslWaiter) {
        const waiter = this.saslWaiter;
        this.saslWaiter = null;
        waiter(event.line);
      } else if (event.type === 'error' && event.fatal && this.saslWaiter) {
        // A SASL response over the line limit: no line will come, so the session ends now (closing cancels the
        // exchange) rather than waiting for the login timeout behind the command that waits for it.
        this.fatal(event);
      } else {
        this.queue.push(event);
      }
    }
  }

  private async run(): Promise<void> {
    if (this.running) return;
    this.running = true;
    try {
      while (this.queue.length > 0 && !this.closed && !this.handedOver) {
        const event = this.queue.shift()!;
        // While a command is answered (a login can take a while) the socket is not read: TCP holds back what the
        // client pipelines, instead of passgate's memory.
        if (event.type === 'command') this.socket.pause();
        await this.handle(event);
        // The reader pauses after each command; once it is answered, read on (unless the pipe took over).
        if (event.type === 'command' && !this.closed && !this.handedOver) {
          this.route(this.reader.resume());
          if (this.socket.writableNeedDrain !== true) this.socket.resume();
        }
      }
    } catch (error) {
      this.deps.log.error({ session: this.client.id, cause: (error as Error).message }, 'imap session failed');
      this.bye(IMAP_REPLIES.internalError, 'error');
    } finally {
      this.running = false;
    }
  }

  private async handle(event: ReaderEvent): Promise<void> {
    switch (event.type) {
      case 'continue-literal':
        return this.write(`+ ${IMAP_REPLIES.literalReady}`);
      case 'error':
        if (event.fatal) return this.fatal(event);
        // Bad lines count like commands, so a client cannot have passgate answer BAD forever.
        if (++this.commands > this.options.maxCommands) return this.bye(IMAP_REPLIES.tooManyCommands, 'too-many-commands');
        return this.write(`${event.tag ?? '*'} ${event.code === 'literal-too-large' ? IMAP_REPLIES.literalTooBig : IMAP_REPLIES.badSyntax}`);
      case 'sasl':
        return this.write(`* ${IMAP_REPLIES.badSyntax}`); // a SASL line nobody asked for
      case 'command':
        if (++this.commands > this.options.maxCommands) return this.bye(IMAP_REPLIES.tooManyCommands, 'too-many-commands');
        return this.command(event);
    }
  }

  /** A fatal reader error ends the session: the reader is closed and reads nothing more. */
  private fatal(event: Extract<ReaderEvent, { type: 'error' }>): void {
    this.bye(event.code === 'line-too-long' ? IMAP_REPLIES.lineTooLong : IMAP_REPLIES.protocolError, 'protocol-error');
  }

  private async command({ tag, name, args }: CommandEvent): Promise<void> {
    switch (name) {
      case 'CAPABILITY':
        this.write(`* CAPABILITY ${this.capabilities()}`);
        return this.write(`${tag} ${IMAP_REPLIES.capabilityDone}`);
      case 'NOOP':
        return this.write(`${tag} ${IMAP_REPLIES.noopDone}`);
      case 'LOGOUT':
        this.write(`* BYE ${IMAP_REPLIES.loggingOut}`);
        this.write(`${tag} ${IMAP_REPLIES.logoutDone}`);
        return this.close('logout');
      case 'ID': // RFC 2971
        this.write(`* ${IMAP_REPLIES.id}`);
        return this.write(`${tag} ${IMAP_REPLIES.idDone}`);
      case 'STARTTLS':
        return this.starttls(tag);
      case 'LOGIN': {
        const user = asAString(args[0]);
        const password = asAString(args[1]);
        if (user === null || password === null || args.length !== 2) return this.write(`${tag} ${IMAP_REPLIES.badSyntax}`);
        if (!this.loginAllowed) return this.write(`${tag} ${this.privacyReply()}`);
        return this.login(tag, user, password);
      }
      case 'AUTHENTICATE':
        return this.authenticate(tag, args);
      default:
        return this.write(`${tag} ${IMAP_REPLIES.notBeforeLogin}`);
    }
  }

  private privacyReply(): string {
    return this.options.tlsMode === 'none' ? IMAP_REPLIES.plaintextRefused : IMAP_REPLIES.privacyRequired;
  }

  /** RFC 3501 §6.2.1 / RFC 2595 §3.1: anything pipelined after STARTTLS is dropped, never read as a command. */
  private async starttls(tag: string): Promise<void> {
    if (this.options.tlsMode !== 'starttls' || this.secure) return this.write(`${tag} ${IMAP_REPLIES.starttlsDone}`);
    this.write(`${tag} ${IMAP_REPLIES.beginTls}`);
    this.socket.off('data', this.onData);
    this.reader = ImapSession.newReader();
    const plain = this.socket;
    const secure = serverTlsSocket(plain, this.options.tlsOptions());
    this.socket = secure;
    const failed = () => this.summary.closing('tls-failed');
    secure.once('error', failed); // before attach(): its close would call this a client leaving
    this.attach(secure);
    try {
      await completeServerTls(secure, HANDSHAKE_TIMEOUT_MS);
      secure.off('error', failed);
      this.secure = true;
    } catch {
      this.close('tls-failed');
    }
  }

  /** Sends a SASL challenge and reads the client's answer: the socket flows for that line, then pauses again. */
  private async nextSaslLine(challenge: string): Promise<string | null> {
    this.write(`+ ${challenge}`);
    this.reader.expectSaslLine();
    const line = new Promise<string | null>((resolve) => (this.saslWaiter = resolve));
    this.route(this.reader.resume());
    this.socket.resume();
    const answer = await line;
    this.socket.pause();
    return answer;
  }

  /** RFC 4959 (SASL-IR) and RFC 4616 (PLAIN); the LOGIN mechanism as Outlook and Thunderbird send it. */
  private async authenticate(tag: string, args: ImapValue[]): Promise<void> {
    const mechanism = asAString(args[0])?.toUpperCase();
    if (!this.loginAllowed) return this.write(`${tag} ${this.privacyReply()}`);
    const decode = (line: string | null): string | null => (line === null || line === '*' ? null : Buffer.from(line === '=' ? '' : line, 'base64').toString('utf8'));
    if (mechanism === 'PLAIN') {
      const initial = args[1] ? asAString(args[1]) : await this.nextSaslLine('');
      const decoded = decode(initial);
      if (decoded === null) return this.write(`${tag} ${IMAP_REPLIES.cancelled}`);
      const [authzid = '', authcid = '', password = ''] = decoded.split('\0');
      // RFC 4616: acting for another identity is not offered. As for SMTP, a name left in authzid with an empty
      // authcid (a common client quirk) is the user; both filled and different is refused.
      if (authzid !== '' && authcid !== '' && authzid !== authcid) return this.write(`${tag} ${IMAP_LOGIN_REPLIES['invalid-credentials']}`);
      return this.login(tag, authcid || authzid, password);
    }
    if (mechanism === 'LOGIN') {
      const user = decode(args[1] ? asAString(args[1]) : await this.nextSaslLine('VXNlcm5hbWU6'));
      if (user === null) return this.write(`${tag} ${IMAP_REPLIES.cancelled}`);
      const password = decode(await this.nextSaslLine('UGFzc3dvcmQ6'));
      if (password === null) return this.write(`${tag} ${IMAP_REPLIES.cancelled}`);
      return this.login(tag, user, password);
    }
    return this.write(`${tag} ${IMAP_REPLIES.unsupportedMechanism}`);
  }

  private async login(tag: string, username: string, password: string): Promise<void> {
    const { authenticator, upstream: mailboxes } = this.deps;
    const request = { protocol: 'imap' as const, clientIp: this.client.ip, sessionId: this.client.id, username, password, secure: this.secure };
    // One attempt, one record: the password, then the mailbox opened upstream (its failure is the attempt's outcome).
    const outcome = await authenticator.login(request, ({ mailbox }) => mailboxes.open(mailbox));
    if (!outcome.ok && 'upstream' in outcome) return this.write(`${tag} ${IMAP_UPSTREAM_LOGIN_REPLIES[outcome.upstream.kind]}`);
    if (!outcome.ok) {
      this.failures++;
      await new Promise((r) => setTimeout(r, outcome.delayMs));
      this.write(`${tag} ${IMAP_LOGIN_REPLIES[outcome.reason]}`);
      if (this.failures >= this.options.maxFailures) this.bye(IMAP_REPLIES.tooManyFailures, 'too-many-failures');
      return;
    }
    const upstream = outcome.session;
    if (this.closed) return void upstream.socket.destroy();
    this.handOver(tag, outcome, upstream);
  }

  /** From here on passgate is a pipe: all in one tick, so no byte from either side can slip between. */
  private handOver(
    tag: string,
    outcome: { username: string; mailbox: string; appPasswordId: string; appPasswordName: string },
    upstream: MailboxSession,
  ): void {
    this.handedOver = true;
    clearTimeout(this.loginTimer);
    this.loginTimer = undefined;
    const client = this.socket;
    client.off('data', this.onData);
    this.write(`${tag} ${imapLoginOk(upstream.capabilities)}`);
    if (upstream.leftover.length > 0) client.write(upstream.leftover);
    // What the client pipelined behind LOGIN goes upstream; the reader lets go of its buffer (the session object
    // lives as long as the connection, for the shutdown's BYE).
    const pipelined = this.reader.release();
    if (pipelined.length > 0) upstream.socket.write(pipelined);
    const { metrics, registry } = this.deps;
    const { username, mailbox, appPasswordId, appPasswordName } = outcome;
    this.summary.authenticated({ username, mailbox, appPasswordId, appPasswordName });
    let unregister = () => {};
    const splice = spliceSockets(client, upstream.socket, {
      idleTimeoutMs: this.options.idleTimeoutMs,
      idleFarewell: `* BYE ${IMAP_REPLIES.idle}\r\n`,
      onBytes: (direction, bytes) => metrics.bytes(direction, bytes),
      // The `session closed` line follows when the client's socket has closed.
      onEnd: (reason) => {
        unregister();
        this.summary.closing(reason);
      },
    });
    unregister = registry.register(outcome.appPasswordId, (reason) =>
      splice.close(reason, `* BYE ${reason === 'revoked' ? IMAP_REPLIES.revoked : IMAP_REPLIES.expired}\r\n`),
    );
    this.closeHandedOver = (farewell) => splice.close('shutdown', `* BYE ${farewell}\r\n`);
  }

  /** Set once the pipe runs: closes it with a farewell (shutdown). */
  private closeHandedOver: ((farewell: string) => void) | null = null;

  /** Ends the connection with `* BYE`; before login, or through the pipe after it (only the listener's shutdown then). */
  bye(text: string, reason: SessionEnd = 'shutdown'): void {
    if (this.closeHandedOver) return this.closeHandedOver(text);
    this.write(`* BYE ${text}`);
    this.close(reason);
  }

  private close(reason: SessionEnd): void {
    if (this.closed || this.handedOver) return;
    this.summary.closing(reason);
    this.closed = true;
    clearTimeout(this.loginTimer);
    this.loginTimer = undefined;
    this.saslWaiter?.(null);
    this.socket.end();
    setTimeout(() => this.socket.destroy(), 1000).unref();
  }
}
