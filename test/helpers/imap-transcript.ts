import type { Socket } from 'node:net';
import { SocketTranscript } from './socket-transcript.js';

/** An IMAP test client over a real socket: `t.send('a LOGIN u p'); await t.until(/^a OK/)`. */
export class ImapTranscript extends SocketTranscript {
  static async connect(port: number, options: { tls?: boolean } = {}): Promise<ImapTranscript> {
    return new ImapTranscript(await SocketTranscript.open(port, options.tls ?? false));
  }

  static wrap(socket: Socket): ImapTranscript {
    return new ImapTranscript(socket);
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

  async starttls(tag = 's'): Promise<void> {
    this.send(`${tag} STARTTLS`);
    await this.until(new RegExp(`^${tag} OK`));
    await this.upgrade();
  }
}
