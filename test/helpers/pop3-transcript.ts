import { SocketTranscript } from './socket-transcript.js';

/** A POP3 test client over a real socket: `t.send('USER u'); await t.until(/^\+OK/)`. */
export class Pop3Transcript extends SocketTranscript {
  static async connect(port: number, options: { tls?: boolean } = {}): Promise<Pop3Transcript> {
    return new Pop3Transcript(await SocketTranscript.open(port, options.tls ?? false));
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

  /** The next single-line reply (+OK or -ERR). */
  reply(): Promise<string> {
    return this.until(/^(\+OK|-ERR|\+ )/);
  }

  async stls(): Promise<void> {
    this.send('STLS');
    await this.until(/^\+OK/);
    await this.upgrade();
  }
}
