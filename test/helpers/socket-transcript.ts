import { once } from 'node:events';
import { connect as netConnect, type Socket } from 'node:net';
import { connect as tlsConnect, type TLSSocket } from 'node:tls';

/**
 * The socket side of a protocol transcript in tests: connect (plain or TLS), collect what the server sends,
 * wait for it, upgrade to TLS in place, and notice the close. SmtpTranscript and ImapTranscript add how their
 * protocol's replies end.
 */
export class SocketTranscript {
  protected buffer = '';
  private waiters: (() => void)[] = [];
  closed = false;

  protected constructor(protected socket: Socket | TLSSocket) {
    this.attach(socket);
  }

  protected static async open(port: number, tls: boolean): Promise<Socket | TLSSocket> {
    const socket = tls ? tlsConnect({ port, host: '127.0.0.1', rejectUnauthorized: false }) : netConnect({ port, host: '127.0.0.1' });
    await once(socket, tls ? 'secureConnect' : 'connect');
    return socket;
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
      await this.waitForData(left);
    }
  }

  /** What arrived and nothing has consumed yet. */
  pending(): string {
    return this.buffer;
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

  /** Resolves when more data arrives, the socket closes, or `ms` pass. */
  protected waitForData(ms: number): Promise<void> {
    return new Promise<void>((resolve) => {
      const timer = setTimeout(resolve, ms);
      this.waiters.push(() => (clearTimeout(timer), resolve()));
    });
  }

  /** Continues over TLS on the same connection (after the protocol's STARTTLS was accepted). */
  async upgrade(): Promise<void> {
    this.socket.removeAllListeners('data');
    const secure = tlsConnect({ socket: this.socket, rejectUnauthorized: false });
    await once(secure, 'secureConnect');
    this.socket = secure;
    this.attach(secure);
  }

  /** The DER of the certificate the server presented (TLS connections only). */
  peerCertificateDer(): Buffer {
    return (this.socket as TLSSocket).getPeerCertificate().raw;
  }

  write(data: string | Buffer): void {
    this.socket.write(data);
  }

  send(line: string): void {
    this.socket.write(`${line}\r\n`);
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
