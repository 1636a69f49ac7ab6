import { createServer, type Server, type TLSSocket } from 'node:tls';

export interface ScriptedUpstreamOptions {
  /** The implicit-TLS certificate (its CA is what passgate's `smtp.upstream.ca_file` must trust). */
  tls: { key: string; cert: string };
  /** Advertise PIPELINING (default true). */
  pipelining?: boolean;
  /**
   * Hold the reply to MAIL this long, or until the RCPT arrives, whichever is first (default 0: answer at once). A
   * pipelining client's RCPT arrives while it is held; a non-pipelining client's cannot.
   */
  holdMailMs?: number;
  /** A reply of the test's own for a command line (verb upper-cased), or undefined for the script's usual one. */
  reply?: (verb: string, line: string, connection: number) => string | undefined;
  /** Advertise CHUNKING (RFC 3030) and take BDAT (default false). */
  chunking?: boolean;
  /** A reply of the test's own to a BDAT chunk (0-based within its message), or undefined for 250. */
  bdatReply?: (chunk: number, last: boolean, connection: number) => string | undefined;
  /** Cut the connection once this many bytes of BDAT chunks have arrived on it (default: never). */
  cutInBdatAfter?: number;
  /** Hold every reply to DATA (the 354) until the test calls releaseData() (default false). */
  holdData?: boolean;
  /** The final reply to a message of the test's own (e.g. Exchange's `550 5.2.252 SendAsDenied` after DATA), or undefined for 250. */
  dataReply?: (message: string, connection: number) => string | undefined;
}

/**
 * A minimal SMTP upstream on loopback (implicit TLS) whose every reply the test controls, for what the real
 * smtp-server based upstream cannot do: hold a reply, refuse RSET, answer 421 without closing. It records every
 * command line per connection; AUTH always succeeds (the token is not the question here).
 */
export class ScriptedSmtpUpstream {
  /** Every command line received, in order, with the 1-based connection it came on. */
  readonly lines: { connection: number; line: string }[] = [];
  /** Commands (verbs) that arrived while a reply to MAIL was held. */
  readonly duringHeldMail: string[] = [];
  /** Every byte received after the TLS handshake, per 1-based connection (latin1: one char per byte). */
  readonly received = new Map<number, string>();
  /** Each message body accepted (up to, not including, its final "." line), as received (still dot-stuffed). */
  readonly messages: string[] = [];
  /** Each BDAT chunk received: its size, whether it was LAST, and whether it arrived whole. */
  readonly chunks: { connection: number; size: number; last: boolean }[] = [];
  /** Each 'data' event's bytes per connection (latin1): what passgate wrote together arrives together on loopback. */
  readonly reads = new Map<number, string[]>();
  /** Connections the upstream has seen close. */
  readonly closed = new Set<number>();
  connections = 0;
  port = 0;
  private server: Server | null = null;
  /** Conditions a test waits for, checked after every read and close. */
  private watchers: { condition: () => boolean; resolve: () => void }[] = [];
  private heldData: (() => void)[] = [];
  private dataArrived: (() => void)[] = [];

  constructor(private readonly options: ScriptedUpstreamOptions) {}

  get verbs(): string[] {
    return this.lines.map((l) => l.line.split(/[ :]/)[0]!.toUpperCase());
  }

  async start(): Promise<this> {
    this.server = createServer(this.options.tls, (socket) => this.serve(socket, ++this.connections));
    await new Promise<void>((resolve) => this.server!.listen(0, '127.0.0.1', resolve));
    this.port = (this.server.address() as { port: number }).port;
    return this;
  }

  /** Resolves once `condition` holds, checked whenever bytes arrive or a connection closes (bounded: 10 s). */
  until(condition: () => boolean, timeoutMs = 10_000): Promise<void> {
    if (condition()) return Promise.resolve();
    return new Promise((resolve, reject) => {
      const timer = setTimeout(() => reject(new Error('scripted upstream: condition not reached in time')), timeoutMs);
      this.watchers.push({ condition, resolve: () => (clearTimeout(timer), resolve()) });
    });
  }

  private check(): void {
    this.watchers = this.watchers.filter((w) => (w.condition() ? (w.resolve(), false) : true));
  }

  /** Resolves when a DATA command has arrived (and, with holdData, is being held). */
  dataReceived(): Promise<void> {
    return new Promise((resolve) => this.dataArrived.push(resolve));
  }

  /** Sends the held 354s (holdData). */
  releaseData(): void {
    for (const release of this.heldData.splice(0)) release();
  }

  async stop(): Promise<void> {
    this.server?.close();
  }

  private serve(socket: TLSSocket, connection: number): void {
    socket.on('error', () => {});
    socket.on('close', () => {
      this.closed.add(connection);
      this.check();
    });
    const say = (text: string) => socket.write(`${text}\r\n`);
    const pipelining = this.options.pipelining ?? true;
    let buffer = '';
    let inData = false;
    let heldMail: (() => void) | null = null;
    let message = '';
    /** BDAT: bytes of the current chunk still to come, whether it is the LAST one, and its index in the message. */
    let bdat: { remaining: number; last: boolean; size: number } | null = null;
    let bdatIndex = 0;
    /** BDAT bytes received on this connection (for cutInBdatAfter). */
    let bdatBytes = 0;
    say('220 scripted.test ESMTP');
    socket.setEncoding('latin1');
    socket.on('data', (chunk: string) => {
      this.received.set(connection, (this.received.get(connection) ?? '') + chunk);
      this.reads.set(connection, [...(this.reads.get(connection) ?? []), chunk]);
      buffer += chunk;
      let end: number;
      for (;;) {
        if (bdat) {
          const cutAfter = this.options.cutInBdatAfter;
          if (cutAfter !== undefined && (bdatBytes += Math.min(buffer.length, bdat.remaining)) >= cutAfter) {
            socket.destroy(); // in the middle of a chunk: no reply, no delivery
            return;
          }
          const take = buffer.slice(0, bdat.remaining);
          buffer = buffer.slice(take.length);
          message += take;
          bdat.remaining -= take.length;
          if (bdat.remaining > 0) break;
          const { last, size } = bdat;
          bdat = null;
          this.chunks.push({ connection, size, last });
          const own = this.options.bdatReply?.(bdatIndex++, last, connection);
          if (own !== undefined) {
            message = '';
            bdatIndex = 0;
            say(own);
            continue;
          }
          if (!last) {
            say(`250 2.0.0 ${size} octets received`);
            continue;
          }
          const final = this.options.dataReply?.(message, connection);
          if (final === undefined) this.messages.push(message);
          message = '';
          bdatIndex = 0;
          say(final ?? '250 2.0.0 queued as SCRIPTED');
          continue;
        }
        if ((end = buffer.indexOf('\r\n')) < 0) break;
        const line = buffer.slice(0, end);
        buffer = buffer.slice(end + 2);
        if (inData) {
          if (line === '.') {
            inData = false;
            const own = this.options.dataReply?.(message, connection);
            if (own === undefined) this.messages.push(message);
            message = '';
            say(own ?? '250 2.0.0 queued as SCRIPTED');
          } else message += `${line}\r\n`;
          continue;
        }
        this.lines.push({ connection, line });
        const verb = line.split(/[ :]/)[0]!.toUpperCase();
        if (heldMail) this.duringHeldMail.push(verb);
        if (verb === 'RCPT') heldMail?.(); // a pipelining server answers MAIL first
        const own = this.options.reply?.(verb, line, connection);
        if (own !== undefined) {
          say(own);
          continue;
        }
        switch (verb) {
          case 'EHLO':
            say('250-scripted.test');
            if (pipelining) say('250-PIPELINING');
            if (this.options.chunking) say('250-CHUNKING');
            say('250-AUTH XOAUTH2');
            say('250 8BITMIME');
            break;
          case 'AUTH':
            say('235 2.7.0 accepted');
            break;
          case 'MAIL': {
            const holdMs = this.options.holdMailMs ?? 0;
            if (holdMs <= 0) {
              say('250 2.1.0 sender ok');
              break;
            }
            const release = () => {
              clearTimeout(timer);
              heldMail = null;
              say('250 2.1.0 sender ok');
            };
            const timer = setTimeout(release, holdMs);
            heldMail = release;
            break;
          }
          case 'RCPT':
            say('250 2.1.5 recipient ok');
            break;
          case 'DATA': {
            inData = true;
            for (const arrived of this.dataArrived.splice(0)) arrived();
            if (this.options.holdData) this.heldData.push(() => say('354 go ahead'));
            else say('354 go ahead');
            break;
          }
          case 'BDAT': {
            const [, size, last] = /^BDAT (\d+)( LAST)?$/i.exec(line) ?? [];
            if (!this.options.chunking || size === undefined) {
              say('500 5.5.1 no BDAT here');
              break;
            }
            bdat = { remaining: Number(size), last: last !== undefined, size: Number(size) };
            break;
          }
          case 'QUIT':
            say('221 2.0.0 bye');
            socket.end();
            break;
          default:
            say('250 2.0.0 ok');
        }
      }
    });
    socket.on('data', () => this.check()); // after the listener above has taken the bytes in
  }
}
