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

  async starttls(tag = 's'): Promise<void> {
    this.send(`${tag} STARTTLS`);
    await this.until(new RegExp(`^${tag} OK`));
    await this.upgrade();
  }
}
