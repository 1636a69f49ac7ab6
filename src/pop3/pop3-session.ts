import type { Socket } from 'node:net';
import type { Pop3Metrics } from '../core/pop3-metrics.js';
import type { AcceptedClient, PipedSessionDeps, PipedSessionOptions } from '../net/piped-protocol.js';
import type { MailboxSession } from '../core/ports/mailbox-upstream.js';
import type { SessionEnd } from '../core/session-metrics.js';
import { SessionSummary } from '../core/session-summary.js';
import { HANDSHAKE_TIMEOUT_MS } from '../net/accept-client.js';
import { completeServerTls, serverTlsSocket } from '../net/server-tls-handshake.js';
import { spliceSockets } from '../net/socket-splice.js';
import { decodeSaslPlain, parsePop3Command, type Pop3Command } from './pop3-command-parser.js';
import { Pop3LineReader } from './pop3-line-reader.js';
import { POP3_LOGIN_REPLIES, POP3_REPLIES } from './pop3-replies.js';

export type Pop3SessionDeps = PipedSessionDeps<Pop3Metrics>;
export type Pop3SessionOptions = PipedSessionOptions;

/** A command line or SASL response longer than this ends the session (RFC 2449 §4: commands are 255 octets). */
const MAX_LINE_BYTES = 4096;

/**
 * One POP3 connection in the AUTHORIZATION state, where passgate speaks POP3 itself (RFC 1939, RFC 2449, RFC 2595,
 * RFC 5034): CAPA, STLS, USER/PASS, AUTH PLAIN, NOOP, QUIT, and -ERR to anything else. A successful login opens
 * the mailbox upstream with XOAUTH2, answers +OK and turns the connection into a byte pipe (socket-splice.ts): the
 * TRANSACTION state is the upstream's. Lines are handled one at a time; the socket is read only while passgate
 * waits for a line, so what a client pipelines waits in TCP, not in passgate's memory.
 */
export class Pop3Session {
  private reader = new Pop3LineReader(MAX_LINE_BYTES);
  private secure: boolean;
  private failures = 0;
  private commands = 0;
  private closed = false;
  private handedOver = false;
  /** USER's name, waiting for PASS (cleared by STLS and by any other command than PASS). */
  private user: string | null = null;
  private wake: (() => void) | null = null;
  private loginTimer: NodeJS.Timeout | undefined;
  private readonly onData = (chunk: Buffer) => {
    this.reader.push(chunk);
    this.socket.pause();
    this.wakeUp();
  };
  private readonly summary: SessionSummary;
  /** Set once the pipe runs: closes it (shutdown). */
  private closeHandedOver: (() => void) | null = null;

  /** `client.wire` is the TCP socket as accepted: the session is over when it closes. */
  constructor(
    private socket: Socket,
    private readonly client: AcceptedClient,
    private readonly deps: Pop3SessionDeps,
    private readonly options: Pop3SessionOptions,
  ) {
    this.secure = client.secure;
    this.loginTimer = setTimeout(() => this.end(POP3_REPLIES.loginTimeout, 'login-timeout'), options.loginTimeoutMs);
    this.summary = new SessionSummary({ session: client.id, protocol: 'pop3', listener: options.listener, ip: client.ip }, client.wire, {
      metrics: deps.metrics.sessions,
      log: deps.log,
    });
    if (client.wire.destroyed) setImmediate(() => this.summary.end());
    else client.wire.once('close', () => this.summary.end());
  }

  start(): void {
    this.attach(this.socket);
    this.socket.pause();
    this.write(POP3_REPLIES.greeting);
    void this.run();
  }

  /** RFC 2595 §4: no USER and no SASL until TLS, or on a plaintext listener from a listed network. */
  private get loginAllowed(): boolean {
    return this.secure || (this.options.tlsMode === 'none' && this.options.plaintextAuth.contains(this.client.ip));
  }

  /** RFC 2449 §6: what this connection offers now (it changes with TLS). TRANSACTION's are the upstream's to tell. */
  private capabilities(): string[] {
    const caps = ['RESP-CODES', 'AUTH-RESP-CODE'];
    if (this.options.tlsMode === 'starttls' && !this.secure) caps.push('STLS');
    if (this.loginAllowed) caps.push('USER', 'SASL PLAIN');
    caps.push('IMPLEMENTATION passgate');
    return caps;
  }

  private attach(socket: Socket): void {
    socket.on('data', this.onData);
    socket.on('error', () => this.close('client-closed'));
    socket.on('close', () => this.close('client-closed'));
  }

  private write(line: string): void {
    if (!this.closed) this.socket.write(`${line}\r\n`);
  }

  private wakeUp(): void {
    const wake = this.wake;
    this.wake = null;
    wake?.();
  }

  /** The next line from the client, or null once the session is closing (or the line was too long: it closes). */
  private async readLine(): Promise<string | null> {
    for (;;) {
      if (this.closed || this.handedOver) return null;
      const next = this.reader.next();
      if (next?.type === 'line') return next.line;
      if (next?.type === 'too-long') {
        this.end(POP3_REPLIES.lineTooLong, 'protocol-error');
        return null;
      }
      const more = new Promise<void>((resolve) => (this.wake = resolve));
      // A client that does not read its replies is not read either (no unbounded queue of replies).
      if (this.socket.writableNeedDrain) await new Promise((resolve) => this.socket.once('drain', resolve));
      if (this.closed) return null;
      this.socket.resume();
      await more;
    }
  }

  private async run(): Promise<void> {
    try {
      for (;;) {
        const line = await this.readLine();
        if (line === null) return;
        if (++this.commands > this.options.maxCommands) return this.end(POP3_REPLIES.tooManyCommands, 'too-many-commands');
        await this.command(line);
      }
    } catch (error) {
      this.deps.log.error({ session: this.client.id, cause: (error as Error).message }, 'pop3 session failed');
      this.end(POP3_REPLIES.internalError, 'error');
    }
  }

  private async command(line: string): Promise<void> {
    const command = parsePop3Command(line);
    if (command === null) return this.write(POP3_REPLIES.badSyntax);
    const user = this.user;
    this.user = null; // RFC 1939 §7: PASS must follow USER at once
    switch (command.name) {
      case 'CAPA':
        return this.write([POP3_REPLIES.capabilityList, ...this.capabilities(), '.'].join('\r\n'));
      case 'NOOP':
        return this.write(POP3_REPLIES.noop);
      case 'QUIT':
        this.write(POP3_REPLIES.quit);
        return this.close('logout');
      case 'STLS':
        return this.stls();
      case 'USER':
        if (!this.loginAllowed) return this.write(this.privacyReply());
        if (command.rest === '') return this.write(POP3_REPLIES.badSyntax);
        this.user = command.rest;
        return this.write(POP3_REPLIES.userAccepted);
      case 'PASS':
        if (!this.loginAllowed) return this.write(this.privacyReply());
        if (user === null) return this.write(POP3_REPLIES.passWithoutUser);
        return this.login(user, command.rest);
      case 'AUTH':
        return this.authenticate(command);
      case 'APOP':
        return this.write(POP3_REPLIES.apopUnsupported);
      default:
        return this.write(POP3_REPLIES.notBeforeLogin);
    }
  }

  private privacyReply(): string {
    return this.options.tlsMode === 'none' ? POP3_REPLIES.plaintextRefused : POP3_REPLIES.privacyRequired;
  }

  /** RFC 2595 §4: anything pipelined after STLS is dropped, never read as a command; the state starts over. */
  private async stls(): Promise<void> {
    if (this.options.tlsMode !== 'starttls' || this.secure) return this.write(POP3_REPLIES.tlsActive);
    this.write(POP3_REPLIES.beginTls);
    this.socket.off('data', this.onData);
    this.reader = new Pop3LineReader(MAX_LINE_BYTES);
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

  /** RFC 5034 with RFC 4616 PLAIN, initial response or not; `AUTH` alone lists the mechanisms (as clients probe). */
  private async authenticate(command: Pop3Command): Promise<void> {
    const [mechanism, initial, extra] = command.args;
    if (mechanism === undefined) return this.write([POP3_REPLIES.mechanismList, ...(this.loginAllowed ? ['PLAIN'] : []), '.'].join('\r\n'));
    if (mechanism.toUpperCase() !== 'PLAIN' || extra !== undefined) return this.write(POP3_REPLIES.unsupportedMechanism);
    if (!this.loginAllowed) return this.write(this.privacyReply());
    let response = initial;
    if (response === undefined) {
      this.write(POP3_REPLIES.saslContinue);
      const line = await this.readLine();
      if (line === null) return;
      response = line;
    }
    const plain = decodeSaslPlain(response);
    if (plain === null) return this.write(response === '*' ? POP3_REPLIES.cancelled : POP3_REPLIES.badSyntax);
    const { authzid, authcid, password } = plain;
    // RFC 4616: acting for another identity is not offered. As for IMAP and SMTP, a name left in authzid with an
    // empty authcid (a common client quirk) is the user; both filled and different is refused.
    if (authzid !== '' && authcid !== '' && authzid !== authcid) return this.write(POP3_LOGIN_REPLIES.refused['invalid-credentials']);
    return this.login(authcid || authzid, password);
  }

  private async login(username: string, password: string): Promise<void> {
    const { authenticator, upstream: mailboxes } = this.deps;
    const request = { protocol: 'pop3' as const, clientIp: this.client.ip, sessionId: this.client.id, username, password, secure: this.secure };
    // One attempt, one record: the password, then the mailbox opened upstream (its failure is the attempt's outcome).
    const outcome = await authenticator.login(request, ({ mailbox }) => mailboxes.open(mailbox));
    if (!outcome.ok && 'upstream' in outcome) return this.write(POP3_LOGIN_REPLIES.upstream[outcome.upstream.kind]);
    if (!outcome.ok) {
      this.failures++;
      await new Promise((r) => setTimeout(r, outcome.delayMs));
      if (this.failures >= this.options.maxFailures) return this.end(POP3_REPLIES.tooManyFailures, 'too-many-failures');
      return this.write(POP3_LOGIN_REPLIES.refused[outcome.reason]);
    }
    if (this.closed) return void outcome.session.socket.destroy();
    this.handOver(outcome, outcome.session);
  }

  /** From here on passgate is a pipe: all in one tick, so no byte from either side can slip between. */
  private handOver(outcome: { username: string; mailbox: string; appPasswordId: string; appPasswordName: string }, upstream: MailboxSession): void {
    this.handedOver = true;
    clearTimeout(this.loginTimer);
    this.loginTimer = undefined;
    const client = this.socket;
    client.off('data', this.onData);
    client.write(`${POP3_REPLIES.loggedIn}\r\n`);
    if (upstream.leftover.length > 0) client.write(upstream.leftover);
    // What the client pipelined behind its login (RFC 2449 PIPELINING clients) goes upstream as sent.
    const pipelined = this.reader.release();
    if (pipelined.length > 0) upstream.socket.write(pipelined);
    const { metrics, registry } = this.deps;
    const { username, mailbox, appPasswordId, appPasswordName } = outcome;
    this.summary.authenticated({ username, mailbox, appPasswordId, appPasswordName });
    let unregister = () => {};
    // No farewell is written into the pipe: POP3 has no unsolicited reply, and a line in the middle of a RETR
    // would be read as part of the message. The connection just closes (RFC 1939 §3: the client sees the close).
    const splice = spliceSockets(client, upstream.socket, {
      idleTimeoutMs: this.options.idleTimeoutMs,
      onBytes: (direction, bytes) => metrics.bytes(direction, bytes),
      onEnd: (reason) => {
        unregister();
        this.summary.closing(reason);
      },
    });
    unregister = registry.register(outcome.appPasswordId, (reason) => splice.close(reason));
    this.closeHandedOver = () => splice.close('shutdown');
  }

  /** Ends the connection: with `-ERR text` before login, silently through the pipe after it (shutdown). */
  end(text: string, reason: SessionEnd = 'shutdown'): void {
    if (this.closeHandedOver) return this.closeHandedOver();
    this.write(text);
    this.close(reason);
  }

  private close(reason: SessionEnd): void {
    if (this.closed || this.handedOver) return;
    this.summary.closing(reason);
    this.closed = true;
    clearTimeout(this.loginTimer);
    this.loginTimer = undefined;
    this.wakeUp();
    this.socket.end();
    setTimeout(() => this.socket.destroy(), 1000).unref();
  }
}
