import { once } from 'node:events';
import { connect as netConnect, type Socket } from 'node:net';
import { connect as tlsConnect, type TLSSocket } from 'node:tls';

/**
 * A test client that speaks SMTP line by line over a real socket, like a transcript:
 * `await t.send('EHLO x'); await t.expect(/^250 /m)`.
 */
export class SmtpTranscript {
  private buffer = '';
  private waiters: (() => void)[] = [];
  closed = false;

  private constructor(private socket: Socket | TLSSocket) {
    this.attach(socket);
  }

  static async connect(port: number, options: { tls?: boolean } = {}): Promise<SmtpTranscript> {
    const socket = options.tls ? tlsConnect({ port, host: '127.0.0.1', rejectUnauthorized: false }) : netConnect({ port, host: '127.0.0.1' });
    await once(socket, options.tls ? 'secureConnect' : 'connect');
    return new SmtpTranscript(socket);
  }

  /** Wraps an already connected socket (e.g. one that first sent a PROXY header). */
  static wrap(socket: Socket): SmtpTranscript {
    return new SmtpTranscript(socket);
  }

  private attach(socket: Socket | TLSSocket): void {
    socket.on('data', (chunk: Buffer) => {
      this.buffer += chunk.toString('utf8');
      this.waiters.splice(0).forEach((w) => w());
    });
    socket.on('close', () => {
      this.closed = true;
      this.waiters.splice(0).forEach((w) => w());
    });
    socket.on('error', () => {});
  }

  write(data: string | Buffer): void {
    this.socket.write(data);
  }

  send(line: string): void {
    this.socket.write(`${line}\r\n`);
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
      await new Promise<void>((resolve) => {
        const timer = setTimeout(resolve, left);
        this.waiters.push(() => (clearTimeout(timer), resolve()));
      });
    }
  }

  /** STARTTLS: sends the command, expects 220, and continues over TLS. */
  async starttls(): Promise<void> {
    this.send('STARTTLS');
    await this.expect(/^220 /);
    this.socket.removeAllListeners('data');
    const secure = tlsConnect({ socket: this.socket, rejectUnauthorized: false });
    await once(secure, 'secureConnect');
    this.socket = secure;
    this.attach(secure);
  }

  async waitClosed(timeoutMs = 5000): Promise<void> {
    const deadline = Date.now() + timeoutMs;
    while (!this.closed && Date.now() < deadline) await new Promise((r) => setTimeout(r, 20));
    if (!this.closed) throw new Error('connection still open');
  }

  close(): void {
    this.socket.destroy();
  }
}

export const plain = (user: string, password: string) => Buffer.from(`\0${user}\0${password}`).toString('base64');
