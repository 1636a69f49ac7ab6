export type Pop3ReaderResult = { type: 'line'; line: string } | { type: 'too-long' } | null;

/**
 * Splits what a POP3 client sends before login into lines (CRLF, or a bare LF, stripped). Bytes stay bytes until a
 * line is taken, so whatever the client pipelined behind its login can be handed upstream exactly (release()).
 * A line longer than `maxLineBytes` without its end is an error: the session ends (RFC 2449 §4 allows 255 octets
 * per command; SASL responses are longer, so the limit is a few KiB).
 */
export class Pop3LineReader {
  private buffer: Buffer = Buffer.alloc(0);

  constructor(private readonly maxLineBytes: number) {}

  push(chunk: Buffer): void {
    this.buffer = this.buffer.length === 0 ? chunk : Buffer.concat([this.buffer, chunk]);
  }

  /** The next complete line, `too-long`, or null when more bytes are needed. */
  next(): Pop3ReaderResult {
    const end = this.buffer.indexOf(0x0a);
    if (end < 0) return this.buffer.length > this.maxLineBytes ? { type: 'too-long' } : null;
    if (end > this.maxLineBytes) return { type: 'too-long' };
    const line = this.buffer.subarray(0, end).toString('utf8').replace(/\r$/, '');
    this.buffer = this.buffer.subarray(end + 1);
    return { type: 'line', line };
  }

  /** What has not been taken as a line, as sent; the reader is empty afterwards. */
  release(): Buffer {
    const rest = this.buffer;
    this.buffer = Buffer.alloc(0);
    return rest;
  }
}
