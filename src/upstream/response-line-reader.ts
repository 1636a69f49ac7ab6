import type { Socket } from 'node:net';
import { UpstreamError } from '../core/ports/upstream-failure.js';

const unreachable = (message: string) => new UpstreamError('unreachable', message);

const MAX_LINE = 16 * 1024;

/**
 * Reads CRLF-terminated response lines of an upstream login (IMAP, POP3) from a socket that may be swapped
 * (STARTTLS, STLS). A failure of the socket, an overlong line or a timeout (fail()) rejects the line being read
 * with an UpstreamError of kind `unreachable`.
 */
export class ResponseLineReader {
  private buffer = Buffer.alloc(0);
  private waiting: (() => void) | null = null;
  private failure: Error | null = null;
  private socket!: Socket;

  attach(socket: Socket): void {
    this.socket = socket;
    socket.on('data', (chunk: Buffer) => {
      this.buffer = Buffer.concat([this.buffer, chunk]);
      if (this.buffer.length > MAX_LINE && this.buffer.indexOf('\n') < 0) this.fail(unreachable('upstream sent an overlong line'));
      this.wake();
    });
    socket.on('error', (error: Error) => this.fail(unreachable(`upstream connection error: ${error.message}`)));
    socket.on('close', () => this.fail(unreachable('upstream closed the connection')));
  }

  detach(): void {
    this.socket.removeAllListeners('data');
    this.socket.removeAllListeners('close');
  }

  fail(error: Error): void {
    this.failure ??= error;
    this.wake();
  }

  private wake(): void {
    const waiting = this.waiting;
    this.waiting = null;
    waiting?.();
  }

  async line(): Promise<string> {
    for (;;) {
      const end = this.buffer.indexOf('\n');
      if (end >= 0) {
        const line = this.buffer.subarray(0, end).toString('utf8').replace(/\r$/, '');
        this.buffer = this.buffer.subarray(end + 1);
        return line;
      }
      if (this.failure) throw this.failure;
      await new Promise<void>((resolve) => (this.waiting = resolve));
    }
  }

  get buffered(): number {
    return this.buffer.length;
  }

  rest(): Buffer {
    const rest = this.buffer;
    this.buffer = Buffer.alloc(0);
    return rest;
  }
}
