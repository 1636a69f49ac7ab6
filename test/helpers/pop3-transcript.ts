import { SocketTranscript } from './socket-transcript.js';

/** A POP3 test client over a real socket: `t.send('USER u'); await t.until(/^\+OK/)`. */
export class Pop3Transcript extends SocketTranscript {
  static async connect(port: number, options: { tls?: boolean } = {}): Promise<Pop3Transcript> {
    return new Pop3Transcript(await SocketTranscript.open(port, options.tls ?? false));
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
