import { Transform, type TransformCallback } from 'node:stream';
import { SMTP_REPLIES, type SmtpReplySpec } from './smtp-replies.js';

const CR = 0x0d;
const LF = 0x0a;
const NUL = 0x00;
const CRLF = Buffer.from('\r\n');

/**
 * SMTP smuggling (SEC Consult, December 2023): a message body holding an end-of-data sequence that passgate does not
 * read as one (`\n.\n`, `\n.\r\n`, `\r.\r`, `\r.\r\n`, `\r\n.\r`, `\r\n.\n`, `\n.\r`) but an upstream might, would
 * let the client start a second transaction upstream, outside passgate's sender, recipient, size and rate policy.
 * smtp-server ends DATA only on `\r\n.\r\n` (like Postfix's `smtpd_forbid_bare_newline = normal`); this stage makes
 * sure no upstream can see anything else: every bare CR and every bare LF becomes CRLF (RFC 5321 §2.3.8: lines end
 * in CRLF, and bare CR or LF must not be sent), before the dot-stuffer, so a "." after one is stuffed like any line's.
 * Normalising rather than refusing, as Postfix's default does for bare LF: old scripts and devices that end lines
 * with LF keep working, and nothing an upstream could read as a line end is left. NUL has no place in a message
 * sent without BINARYMIME (RFC 5321 §4.5.2 / RFC 2045 §2.7-2.8) and some servers drop it (`\r\n\0.\r\n`): a message
 * with one is refused (`refusal`), and the upstream transaction is abandoned before its final ".".
 */
export class LineEndingNormaliser extends Transform {
  /** Set when the message was refused: the reply the client gets after its final ".". */
  refusal: SmtpReplySpec | null = null;
  /** A CR ended the previous chunk: whether it is bare depends on the next byte. */
  private pendingCr = false;
  /** Line ends rewritten, for the log. */
  rewritten = 0;

  override _transform(chunk: Buffer, _encoding: BufferEncoding, callback: TransformCallback): void {
    if (chunk.includes(NUL)) {
      this.refusal = SMTP_REPLIES.nulInMessage;
      return callback(new Error('message contains NUL'));
    }
    const parts: Buffer[] = [];
    let start = 0;
    let i = 0;
    if (this.pendingCr) {
      this.pendingCr = false;
      // CR then LF across the chunk boundary: a proper line end (the CR went out already, the LF goes out as is).
      if (chunk[0] === LF) i = 1;
      else {
        parts.push(Buffer.from('\n'));
        this.rewritten++;
      }
    }
    // Native scans for the next CR and LF (one each per line of a well-formed message) instead of a JavaScript loop
    // over every byte.
    let nextCr = chunk.indexOf(CR, i);
    let nextLf = chunk.indexOf(LF, i);
    while (nextCr !== -1 || nextLf !== -1) {
      if (nextCr !== -1 && (nextLf === -1 || nextCr < nextLf)) {
        const at = nextCr;
        if (at + 1 === chunk.length) {
          this.pendingCr = true; // decided by the next chunk (or the end)
          break;
        }
        if (chunk[at + 1] === LF) {
          // CRLF: fine
          nextLf = chunk.indexOf(LF, at + 2);
        } else {
          parts.push(chunk.subarray(start, at), CRLF);
          start = at + 1;
          this.rewritten++;
        }
        nextCr = chunk.indexOf(CR, at + 1);
      } else {
        // A bare LF (the LF of a CRLF was stepped over above).
        const at = nextLf;
        parts.push(chunk.subarray(start, at), CRLF);
        start = at + 1;
        this.rewritten++;
        nextLf = chunk.indexOf(LF, at + 1);
      }
    }
    parts.push(chunk.subarray(start));
    callback(null, parts.length === 1 ? parts[0] : Buffer.concat(parts));
  }

  override _flush(callback: TransformCallback): void {
    if (this.pendingCr) {
      this.pendingCr = false;
      this.rewritten++;
      return callback(null, Buffer.from('\n'));
    }
    callback();
  }
}
