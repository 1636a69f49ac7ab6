import { once } from 'node:events';
import { connect as netConnect, type Socket } from 'node:net';
import { connect as tlsConnect, type TLSSocket } from 'node:tls';

/** An IMAP test client over a real socket: `t.send('a LOGIN u p'); await t.until(/^a OK/)`. */
export class ImapTranscript {
  private buffer = '';
  private waiters: (() => void)[] = [];
  closed = false;

  private constructor(private socket: Socket | TLSSocket) {
    this.attach(socket);
  }

  static async connect(port: number, options: { tls?: boolean } = {}): Promise<ImapTranscript> {
    const socket = options.tls ? tlsConnect({ port, host: '127.0.0.1', rejectUnauthorized: false }) : netConnect({ port, host: '127.0.0.1' });
    await once(socket, options.tls ? 'secureConnect' : 'connect');
    return new ImapTranscript(socket);
  }

  static wrap(socket: Socket): ImapTranscript {
    return new ImapTranscript(socket);
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

  send(line: string): void {
    this.socket.write(`${line}\r\n`);
  }

  write(data: string | Buffer): void {
    this.socket.write(data);
  }

  /** Waits for a line matching `pattern`; returns everything up to and including it (and consumes it). */
  async until(pattern: RegExp, timeoutMs = 10_000): Promise<string> {
    const deadline = Date.now() + timeoutMs;
    for (;;) {
      let offset = 0;
      for (const line of this.buffer.split('\r\n').slice(0, -1)) {
        offset += line.length + 2;
        if (pattern.test(line)) {
          const text = this.buffer.slice(0, offset);
          this.buffer = this.buffer.slice(offset);
          return text;
        }
      }
      if (this.closed) throw new Error(`closed while waiting for ${pattern}; got ${JSON.stringify(this.buffer)}`);
      const left = deadline - Date.now();
      if (left <= 0) throw new Error(`timed out waiting for ${pattern}; got ${JSON.stringify(this.buffer)}`);
      await new Promise<void>((resolve) => {
        const timer = setTimeout(resolve, left);
        this.waiters.push(() => (clearTimeout(timer), resolve()));
      });
    }
  }

  async starttls(tag = 's'): Promise<void> {
    this.send(`${tag} STARTTLS`);
    await this.until(new RegExp(`^${tag} OK`));
    this.socket.removeAllListeners('data');
    const secure = tlsConnect({ socket: this.socket, rejectUnauthorized: false });
    await once(secure, 'secureConnect');
    this.socket = secure;
    this.attach(secure);
  }

  async waitClosed(timeoutMs = 10_000): Promise<void> {
    const deadline = Date.now() + timeoutMs;
    while (!this.closed && Date.now() < deadline) await new Promise((r) => setTimeout(r, 20));
    if (!this.closed) throw new Error('connection still open');
  }

  close(): void {
    this.socket.destroy();
  }
}
