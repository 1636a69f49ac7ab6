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
  connections = 0;
  port = 0;
  private server: Server | null = null;

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

  async stop(): Promise<void> {
    this.server?.close();
  }

  private serve(socket: TLSSocket, connection: number): void {
    socket.on('error', () => {});
    const say = (text: string) => socket.write(`${text}\r\n`);
    const pipelining = this.options.pipelining ?? true;
    let buffer = '';
    let inData = false;
    let heldMail: (() => void) | null = null;
    let message = '';
    say('220 scripted.test ESMTP');
    socket.setEncoding('latin1');
    socket.on('data', (chunk: string) => {
      this.received.set(connection, (this.received.get(connection) ?? '') + chunk);
      buffer += chunk;
      let end: number;
      while ((end = buffer.indexOf('\r\n')) >= 0) {
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
          case 'DATA':
            inData = true;
            say('354 go ahead');
            break;
          case 'QUIT':
            say('221 2.0.0 bye');
            socket.end();
            break;
          default:
            say('250 2.0.0 ok');
        }
      }
    });
  }
}
