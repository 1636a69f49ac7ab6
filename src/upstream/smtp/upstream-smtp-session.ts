import { once } from 'node:events';
import { connect as netConnect, type Socket } from 'node:net';
import type { Readable } from 'node:stream';
import { StringDecoder } from 'node:string_decoder';
import { connect as tlsConnect, type TLSSocket } from 'node:tls';
import type { EsmtpParameters, SubmissionSession } from '../../core/ports/submission-upstream.js';
import { replyText, UpstreamError, type UpstreamReply as SmtpReply } from '../../core/ports/upstream-failure.js';
import { clientSecureContext } from '../../tls/client-secure-context.js';
import { encodeXoauth2 } from '../xoauth2.js';
import { DotStuffer } from './dot-stuffer.js';
import { formatEsmtpParameters } from './esmtp-parameters.js';
import { serverIdentity } from '../../tls/server-identity.js';

export interface UpstreamSmtpOptions {
  host: string;
  port: number;
  tls: 'starttls' | 'implicit';
  /** Extra CAs to trust (PEM), or undefined for the system's. */
  ca?: string | undefined;
  servername: string;
  /** Name passgate gives in EHLO. */
  clientName: string;
  connectTimeoutMs: number;
  commandTimeoutMs: number;
  /** RFC 5321 §4.5.3.2.6: the reply after the final "." may take up to 10 minutes. */
  dataTimeoutMs: number;
  /** Told each command's verb (`EOM` for the end of a message), reply class (`2xx` … or `failure`) and seconds. */
  observeCommand?: ((command: string, result: string, seconds: number) => void) | undefined;
}

/** The session broke (closed, no reply in time, nonsense): `lost`; while it was being opened, `unreachable`. */
const lost = (message: string, reply: SmtpReply | null = null) => new UpstreamError('lost', message, { reply });
const unreachable = (message: string, reply: SmtpReply | null = null) => new UpstreamError('unreachable', message, { reply });

const MAX_LINE = 4096;
const MAX_REPLY_LINES = 100;
/**
 * RFC 3030 BDAT: the body goes out in chunks of at least this many bytes (the last one smaller), so a session holds
 * at most this much of a message before it goes out; a message up to this size goes out as one `BDAT n LAST`.
 */
export const BDAT_CHUNK_BYTES = 512 * 1024;
const CRLF = Buffer.from('\r\n');

/**
 * A command-level SMTP client for one upstream session: every command gets the upstream's own reply, so
 * passgate can answer MAIL, each RCPT and DATA with the upstream's verdict (nodemailer only reports after DATA).
 * Replies are matched to commands in order; a missing reply within the timeout ends the session.
 */
export class UpstreamSmtpSession implements SubmissionSession {
  readonly capabilities = new Map<string, string>();
  private socket: Socket | TLSSocket;
  private buffer = '';
  private pendingLines: string[] = [];
  private readonly waiters: { resolve: (r: SmtpReply) => void; reject: (e: Error) => void; timer: NodeJS.Timeout }[] = [];
  private failure: Error | null = null;
  private decoder = new StringDecoder('utf8');
  /** What goes out in this turn of the event loop: one write (one TLS record, one system call) at its end. */
  private outgoing: Buffer[] = [];
  /** Rejects when the session fails: lets a long operation (DATA) stop waiting at once. */
  private readonly failed: Promise<never>;
  private rejectFailed!: (error: Error) => void;
  /** The reply to a DATA sent ahead of the message (sendDataAhead), for message() or, unused, for the next command. */
  private dataAhead: Promise<SmtpReply> | null = null;
  /** The session is in a mail transaction (MAIL sent, DATA not finished). */
  inTransaction = false;
  /** When the token this session logged in with expires (ms since the epoch). */
  authorizedUntil = Infinity;

  private constructor(
    socket: Socket | TLSSocket,
    private readonly options: UpstreamSmtpOptions,
  ) {
    this.socket = socket;
    this.failed = new Promise<never>((_, reject) => (this.rejectFailed = reject));
    this.failed.catch(() => {});
    this.attach(socket);
  }

  /** Connects, reads the greeting, EHLO, STARTTLS when configured, EHLO again. */
  static async open(options: UpstreamSmtpOptions): Promise<UpstreamSmtpSession> {
    const tlsOptions = { host: options.host, port: options.port, ...serverIdentity(options.servername), secureContext: clientSecureContext(options.ca) };
    const socket = options.tls === 'implicit' ? tlsConnect(tlsOptions) : netConnect({ host: options.host, port: options.port });
    socket.setNoDelay(true);
    const session = new UpstreamSmtpSession(socket, options);
    const deadline = setTimeout(() => session.fail(unreachable(`upstream ${options.host}:${options.port} did not answer in time`)), options.connectTimeoutMs);
    try {
      const greeting = await session.read();
      if (greeting.code !== 220) throw unreachable(`upstream greeting refused: ${greeting.code} ${replyText(greeting)}`, greeting);
      await session.ehlo();
      if (options.tls === 'starttls') {
        const reply = await session.command('STARTTLS');
        if (reply.code !== 220) throw unreachable(`upstream refused STARTTLS: ${reply.code} ${replyText(reply)}`, reply);
        await session.upgrade();
        await session.ehlo();
      }
      return session;
    } catch (error) {
      session.close();
      // Whatever broke while opening, the session never was: the upstream is unreachable (same message, same reply).
      if (error instanceof UpstreamError) throw error.kind === 'unreachable' ? error : unreachable(error.message, error.reply);
      throw unreachable(`cannot reach upstream ${options.host}:${options.port}: ${(error as Error).message}`);
    } finally {
      clearTimeout(deadline);
    }
  }

  get usable(): boolean {
    return this.failure === null && !this.socket.destroyed;
  }

  /**
   * Usable and its login still good: the connector sets `authorizedUntil` to the expiry of the token it logged in
   * with. A provider may stop honouring a session past its token's life; passgate does not find out with a client's
   * message, it opens a fresh session instead.
   */
  get current(): boolean {
    return this.usable && Date.now() < this.authorizedUntil;
  }

  /** Current, no transaction open and no reply outstanding: the only state in which a session may be reused. */
  get reusable(): boolean {
    return this.current && !this.inTransaction && this.waiters.length === 0 && this.dataAhead === null;
  }

  /** RFC 2920: the upstream takes MAIL and RCPT before their replies. */
  get pipelining(): boolean {
    return this.capabilities.has('PIPELINING');
  }

  /** RFC 3030: the upstream takes the body as `BDAT n` chunks, no 354 to wait for and no dot-stuffing. */
  get chunking(): boolean {
    return this.capabilities.has('CHUNKING');
  }

  mail(sender: string, parameters: EsmtpParameters): Promise<SmtpReply> {
    return this.afterDataAhead(`MAIL FROM:<${sender}>${formatEsmtpParameters(parameters)}`);
  }

  recipient(address: string, parameters: EsmtpParameters): Promise<SmtpReply> {
    return this.afterDataAhead(`RCPT TO:<${address}>${formatEsmtpParameters(parameters)}`);
  }

  reset(): Promise<SmtpReply> {
    return this.afterDataAhead('RSET');
  }

  /**
   * RFC 2920: DATA may go out behind the last RCPT without waiting for its reply, as a pipelining client sends it.
   * The session handler calls this when the client has already sent its DATA (PromptSmtpServer.nextCommand), so the
   * provider's 354 comes back with the RCPT's reply: one round trip less per message. Only with PIPELINING and
   * without CHUNKING (BDAT has no 354 to wait for). message() then uses this reply; if the client's DATA does not
   * come after all (the RCPT was refused, the client left), any other command first reads the reply, and after a 354
   * the session is closed instead: the provider would take the command as the message's text, and without the final
   * "." nothing is delivered.
   */
  sendDataAhead(): void {
    if (!this.pipelining || this.chunking || this.dataAhead || !this.usable) return;
    const ahead = this.command('DATA');
    this.dataAhead = ahead;
    // Refused (no recipient accepted, MAIL refused): nothing is waiting for a message, the session stays reusable.
    ahead.then((reply) => (reply.code !== 354 && this.dataAhead === ahead ? (this.dataAhead = null) : undefined), () => {});
  }

  /** Sends `line`, after reading the reply to a DATA sent ahead and left unused (see sendDataAhead). */
  private afterDataAhead(line: string): Promise<SmtpReply> {
    const ahead = this.dataAhead;
    if (!ahead) return this.command(line);
    this.dataAhead = null;
    return ahead.then((reply) => {
      if (reply.code !== 354) return this.command(line);
      const error = lost('the upstream is waiting for a message after DATA, and the client sent none');
      this.fail(error);
      throw error;
    });
  }

  /** AUTH XOAUTH2 with the initial response (RFC 4954 SASL-IR). A 334 challenge carries the error: answer it empty. */
  async authenticate(mailbox: string, accessToken: string): Promise<SmtpReply> {
    let reply = await this.send(`AUTH XOAUTH2 ${encodeXoauth2(mailbox, accessToken)}`);
    if (reply.code === 334) reply = await this.send('');
    return reply;
  }

  /** Sends one command line and resolves with its reply (never rejects for a 4xx/5xx: those are answers). */
  command(line: string): Promise<SmtpReply> {
    return this.timed(/^[A-Za-z]*/.exec(line)![0].toUpperCase(), this.send(line));
  }

  private send(line: string): Promise<SmtpReply> {
    const reply = this.read();
    this.queue(Buffer.from(`${line}\r\n`));
    return reply;
  }

  /**
   * Queues bytes for the socket: everything queued in one turn of the event loop goes out as one write at its end
   * (pipelined commands, a BDAT line with its chunk), not one TLS record and system call each.
   */
  private queue(bytes: Buffer): void {
    if (this.failure) return; // a failed session (closed, 421) is sent nothing more
    if (this.outgoing.length === 0) process.nextTick(() => this.flush());
    this.outgoing.push(bytes);
  }

  /** Writes what is queued now, in one write; false when the socket asks the writer to wait for 'drain'. */
  private flush(): boolean {
    const parts = this.outgoing;
    if (parts.length === 0) return true;
    this.outgoing = [];
    if (this.failure) return true;
    return this.socket.write(parts.length === 1 ? parts[0]! : Buffer.concat(parts));
  }

  /** Reports how long a reply took (the verb is passgate's own, so the label set stays small). */
  private timed(command: string, reply: Promise<SmtpReply>): Promise<SmtpReply> {
    const observe = this.options.observeCommand;
    if (!observe) return reply;
    const started = performance.now();
    const seconds = () => (performance.now() - started) / 1000;
    reply.then(
      (r) => observe(command, `${Math.floor(r.code / 100)}xx`, seconds()),
      () => observe(command, 'failure', seconds()),
    );
    return reply;
  }

  /**
   * DATA: on 354, streams the message (dot-stuffed, with backpressure, never whole in memory) and resolves with
   * the upstream's final reply. A refusal of DATA itself resolves with that reply; the body is then not read.
   * If the client's stream breaks off, the session is failed before the final "." is sent, so the upstream never
   * accepts a truncated message. The caller drains whatever the body still holds.
   */
  async message(body: Readable): Promise<SmtpReply> {
    if (this.chunking) return this.chunked(body);
    const ahead = this.dataAhead;
    this.dataAhead = null;
    const go = await (ahead ?? this.command('DATA'));
    if (go.code !== 354) return go;
    const stuffer = new DotStuffer();
    const aborted = new Promise<never>((_, reject) => {
      const abort = () => {
        if (!body.readableEnded) reject(lost('the client stopped sending the message'));
      };
      body.once('error', abort);
      body.once('close', abort);
    });
    aborted.catch(() => {});
    body.pipe(stuffer).pipe(this.socket, { end: false });
    try {
      await Promise.race([once(stuffer, 'end'), this.failed, aborted]);
    } catch (error) {
      body.unpipe(stuffer);
      stuffer.unpipe(this.socket);
      this.fail(error as Error);
      throw error;
    }
    stuffer.unpipe(this.socket);
    // The reply can only come after the final "." went out, so its timer starts now.
    return this.timed('EOM', this.read(this.options.dataTimeoutMs));
  }

  /**
   * RFC 3030 CHUNKING: the body goes out as it arrives, in `BDAT n` chunks of BDAT_CHUNK_BYTES (the last one
   * `BDAT n LAST`), unchanged: no 354 to wait for, no dot-stuffing, 8-bit bytes as they are. Like DATA it ends with
   * CRLF (one is added when the message does not end with one), so both paths deliver the same bytes. With
   * PIPELINING the chunks go out without waiting for each other's replies; without, each waits for the one before.
   * A chunk refused stops the message there (RFC 3030 §2: no more chunks after a 4xx/5xx) and that refusal is the
   * verdict. A body that breaks off fails the session before `LAST` is sent: the upstream delivers nothing.
   */
  private async chunked(body: Readable): Promise<SmtpReply> {
    const replies: Promise<SmtpReply>[] = [];
    let held: Buffer[] = [];
    let heldBytes = 0;
    let tail = Buffer.alloc(0);
    /** A chunk's reply that came back and is not 250, if any. */
    let refusal: SmtpReply | null = null;
    const sendChunk = (last: boolean): boolean => {
      const chunk = held.length === 1 ? held[0]! : Buffer.concat(held);
      held = [];
      heldBytes = 0;
      const reply = this.read(last ? this.options.dataTimeoutMs : this.options.commandTimeoutMs);
      reply.then((r) => (r.code !== 250 ? (refusal ??= r) : undefined), () => undefined);
      replies.push(this.timed(last ? 'EOM' : 'BDAT', reply));
      this.queue(Buffer.from(`BDAT ${chunk.length}${last ? ' LAST' : ''}\r\n`));
      this.queue(chunk);
      return this.flush();
    };
    const chunks = body[Symbol.asyncIterator]() as AsyncIterator<Buffer>;
    try {
      for (;;) {
        const next = await Promise.race([chunks.next(), this.failed]);
        if (next.done) break;
        const chunk = next.value;
        if (chunk.length === 0) continue;
        tail = Buffer.concat([tail, chunk.subarray(-2)]).subarray(-2);
        held.push(chunk);
        heldBytes += chunk.length;
        if (heldBytes < BDAT_CHUNK_BYTES) continue;
        const drained = sendChunk(false);
        if (!this.pipelining) await Promise.race([replies.at(-1)!, this.failed]);
        else if (!drained) await Promise.race([once(this.socket, 'drain'), this.failed]);
        if (refusal) break;
      }
    } catch {
      // The body broke off (a stage refused it, the client left) or the session failed: no LAST goes out.
      this.fail(lost('the client stopped sending the message'));
      throw this.failure!;
    }
    if (!refusal) {
      if (!tail.equals(CRLF)) held.push(CRLF);
      sendChunk(true);
    }
    // The verdict: the first chunk reply that is not 250 (a refusal), else the reply to LAST.
    for (const reply of replies) {
      const r = await reply;
      if (r.code !== 250) return r;
    }
    return replies.at(-1)!;
  }

  /** QUIT politely, then close; idempotent. */
  async quit(): Promise<void> {
    if (!this.usable) return this.close();
    const bye = this.command('QUIT').catch(() => undefined);
    let timer: NodeJS.Timeout | undefined;
    await Promise.race([bye, new Promise((r) => (timer = setTimeout(r, 1000)))]);
    clearTimeout(timer);
    this.close();
  }

  close(): void {
    this.fail(lost('upstream session closed'));
    this.socket.destroy();
  }

  private async ehlo(): Promise<void> {
    const reply = await this.command(`EHLO ${this.options.clientName}`);
    if (reply.code !== 250) throw unreachable(`upstream refused EHLO: ${reply.code} ${replyText(reply)}`, reply);
    this.capabilities.clear();
    for (const line of reply.lines.slice(1)) {
      const [keyword = '', ...rest] = line.split(' ');
      this.capabilities.set(keyword.toUpperCase(), rest.join(' '));
    }
  }

  private async upgrade(): Promise<void> {
    // RFC 3207 §6: anything received before the TLS handshake is discarded, never read as protected — an
    // on-path attacker could have injected it. Its presence is an attack or a broken server: fail.
    if (this.buffer.length > 0 || this.pendingLines.length > 0) throw unreachable('upstream sent data before the TLS handshake');
    const plain = this.socket;
    plain.removeAllListeners('data');
    const secure = tlsConnect({ socket: plain, ...serverIdentity(this.options.servername), secureContext: clientSecureContext(this.options.ca) });
    this.socket = secure;
    this.attach(secure);
    await once(secure, 'secureConnect');
  }

  private attach(socket: Socket | TLSSocket): void {
    this.decoder = new StringDecoder('utf8');
    socket.on('data', (chunk: Buffer) => this.onData(this.decoder.write(chunk)));
    socket.on('error', (error: Error) => this.fail(lost(`upstream connection error: ${error.message}`)));
    socket.on('close', () => this.fail(lost('upstream closed the connection')));
  }

  private onData(chunk: string): void {
    this.buffer += chunk;
    let newline: number;
    while ((newline = this.buffer.indexOf('\n')) >= 0) {
      const line = this.buffer.slice(0, newline).replace(/\r$/, '');
      this.buffer = this.buffer.slice(newline + 1);
      this.pendingLines.push(line);
      // RFC 5321 §4.2.1: "250-" continues a reply, "250 " ends it.
      if (line.length < 4 || line[3] !== '-') this.deliver();
    }
    if (this.buffer.length > MAX_LINE || this.pendingLines.length > MAX_REPLY_LINES) this.fail(lost('upstream sent an overlong reply'));
  }

  private deliver(): void {
    const lines = this.pendingLines;
    this.pendingLines = [];
    const code = Number(lines[lines.length - 1]!.slice(0, 3));
    const texts = lines.map((l) => l.slice(4));
    const enhanced = /^([245]\.\d{1,3}\.\d{1,3})(?: |$)/.exec(texts[0] ?? '')?.[1] ?? null;
    const reply: SmtpReply = {
      code: Number.isInteger(code) ? code : 0,
      enhanced,
      lines: enhanced ? texts.map((t) => t.replace(/^[245]\.\d{1,3}\.\d{1,3} ?/, '')) : texts,
    };
    if (reply.code < 200 || reply.code > 599) return this.fail(lost('upstream sent an unparsable reply'));
    const waiter = this.waiters.shift();
    if (!waiter) return this.fail(lost(`upstream sent a reply nobody asked for: ${reply.code}`));
    clearTimeout(waiter.timer);
    waiter.resolve(reply);
    // RFC 5321 §3.8: 421 means the server is closing the channel. No later command may go out on this session, and
    // it must not look reusable in the moment before the close arrives.
    if (reply.code === 421) this.fail(lost(`upstream is closing the session: 421 ${replyText(reply)}`, reply));
  }

  private read(timeoutMs = this.options.commandTimeoutMs): Promise<SmtpReply> {
    if (this.failure) return Promise.reject(this.failure);
    return new Promise((resolve, reject) => {
      const timer = setTimeout(() => this.fail(lost('upstream did not reply in time')), timeoutMs);
      this.waiters.push({ resolve, reject, timer });
    });
  }

  private fail(error: Error): void {
    if (this.failure) return;
    this.failure = error;
    this.rejectFailed(error);
    for (const waiter of this.waiters.splice(0)) {
      clearTimeout(waiter.timer);
      waiter.reject(error);
    }
    this.socket.destroy();
  }
}
