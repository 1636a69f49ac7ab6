import type { Socket } from 'node:net';
import { SocketTranscript } from './socket-transcript.js';

/**
 * A test client that speaks SMTP line by line over a real socket, like a transcript:
 * `t.send('EHLO x'); await t.expect(/^250 /m)`.
 */
export class SmtpTranscript extends SocketTranscript {
  static async connect(port: number, options: { tls?: boolean } = {}): Promise<SmtpTranscript> {
    return new SmtpTranscript(await SocketTranscript.open(port, options.tls ?? false));
  }

  /** Connects over implicit TLS, says EHLO and logs in with AUTH PLAIN (expects 235). */
  static async loggedIn(port: number, user: string, password: string): Promise<SmtpTranscript> {
    const { t, reply } = await SmtpTranscript.authenticate(port, user, password);
    if (/^235 /.test(reply)) return t;
    t.close();
    throw new Error(`expected 235 to AUTH, got: ${reply}`);
  }

  /**
   * The SMTP login dance over implicit TLS (greeting, EHLO, AUTH PLAIN) for one answer: the reply to AUTH, whatever it
   * is, and the connection closed.
   */
  static async authReply(port: number, user: string, password: string): Promise<string> {
    const { t, reply } = await SmtpTranscript.authenticate(port, user, password);
    t.close();
    return reply;
  }

  /** Greeting, EHLO and AUTH PLAIN over implicit TLS: the open transcript and the reply to AUTH. */
  private static async authenticate(port: number, user: string, password: string): Promise<{ t: SmtpTranscript; reply: string }> {
    const t = await SmtpTranscript.connect(port, { tls: true });
    try {
      await t.expect(/^220 /);
      t.send('EHLO client.test');
      await t.expect(/^250 /m);
      t.send(`AUTH PLAIN ${plain(user, password)}`);
      return { t, reply: await t.expect(/^\d{3} /m) };
    } catch (error) {
      t.close();
      throw error;
    }
  }

  /**
   * One message over a fresh login: MAIL (BODY=8BITMIME), RCPT and DATA one at a time, the body dot-stuffed here (as
   * a client does) and ended with ".", then QUIT. Returns the final reply to the body.
   */
  static async sendMessage(port: number, user: string, password: string, body: Buffer, recipient = 'someone@example.net'): Promise<string> {
    const t = await SmtpTranscript.loggedIn(port, user, password);
    try {
      t.send(`MAIL FROM:<${user}> BODY=8BITMIME`);
      await t.expect(/^250 /);
      t.send(`RCPT TO:<${recipient}>`);
      await t.expect(/^250 /);
      t.send('DATA');
      await t.expect(/^354 /);
      t.write(Buffer.concat([dotStuff(body), Buffer.from('.\r\n')]));
      const reply = await t.expect(/^\d{3} /, 20_000);
      t.send('QUIT');
      await t.expect(/^221 /).catch(() => undefined);
      return reply;
    } finally {
      t.close();
    }
  }

  /** Wraps an already connected socket (e.g. one that first sent a PROXY header). */
  static wrap(socket: Socket): SmtpTranscript {
    return new SmtpTranscript(socket);
  }

  /** Waits until a complete reply matching `pattern` has arrived, consumes up to it, and returns the reply lines. */
  async expect(pattern: RegExp, timeoutMs = 5000): Promise<string> {
    const deadline = Date.now() + timeoutMs;
    for (;;) {
      // A complete reply ends with a line "ddd " (no dash) and CRLF.
      const end = /^\d{3}(?: [^\r\n]*)?\r\n/m.exec(this.buffer);
      if (end) {
        const upto = end.index + end[0].length;
        const reply = this.buffer.slice(0, upto);
        this.buffer = this.buffer.slice(upto);
        if (!pattern.test(reply)) throw new Error(`expected ${pattern}, got: ${JSON.stringify(reply)}`);
        return reply;
      }
      if (this.closed) throw new Error(`connection closed while waiting for ${pattern}; buffer: ${JSON.stringify(this.buffer)}`);
      const left = deadline - Date.now();
      if (left <= 0) throw new Error(`timed out waiting for ${pattern}; buffer: ${JSON.stringify(this.buffer)}`);
      await this.waitForData(left);
    }
  }

  /** STARTTLS: sends the command, expects 220, and continues over TLS. */
  async starttls(): Promise<void> {
    this.send('STARTTLS');
    await this.expect(/^220 /);
    await this.upgrade();
  }
}

/** A body as a client sends it after DATA: each line that starts with "." gets another (RFC 5321 §4.5.2). */
export const dotStuff = (body: Buffer): Buffer => Buffer.from(body.toString('latin1').replace(/(^|\r\n)\./g, '$1..'), 'latin1');

export const plain = (user: string, password: string) => Buffer.from(`\0${user}\0${password}`).toString('base64');
