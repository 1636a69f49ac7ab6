import { Transform, type TransformCallback } from 'node:stream';

const DOT = 0x2e;
const LF = 0x0a;
const CR = 0x0d;
const ONE_DOT = Buffer.from('.');
const LF_DOT = Buffer.from('\n.');

/**
 * RFC 5321 §4.5.2: a line of the message that starts with "." goes out as "..", and the data ends with
 * CRLF "." CRLF. smtp-server hands passgate the message already un-stuffed; this puts it back for the upstream,
 * across chunk boundaries, without holding more than one chunk. The end marker is added on flush (with a CRLF
 * first when the message did not end with one).
 */
export class DotStuffer extends Transform {
  private atLineStart = true;
  private last = -1;
  private secondLast = -1;

  override _transform(chunk: Buffer, _encoding: BufferEncoding, callback: TransformCallback): void {
    // Native scans for LF "." (a line starting with a dot) instead of a loop over every byte in JavaScript.
    const parts: Buffer[] = [];
    let start = 0;
    if (chunk.length > 0 && this.atLineStart && chunk[0] === DOT) parts.push(ONE_DOT);
    for (let at = chunk.indexOf(LF_DOT); at !== -1; at = chunk.indexOf(LF_DOT, at + 1)) {
      parts.push(chunk.subarray(start, at + 1), ONE_DOT);
      start = at + 1;
    }
    parts.push(chunk.subarray(start));
    if (chunk.length > 0) this.atLineStart = chunk[chunk.length - 1] === LF;
    if (chunk.length >= 2) {
      this.secondLast = chunk[chunk.length - 2]!;
      this.last = chunk[chunk.length - 1]!;
    } else if (chunk.length === 1) {
      this.secondLast = this.last;
      this.last = chunk[0]!;
    }
    callback(null, parts.length === 1 ? parts[0] : Buffer.concat(parts));
  }

  override _flush(callback: TransformCallback): void {
    const endsWithCrlf = this.secondLast === CR && this.last === LF;
    callback(null, Buffer.from(endsWithCrlf ? '.\r\n' : '\r\n.\r\n'));
  }
}
