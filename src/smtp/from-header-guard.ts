import { Transform, type TransformCallback } from 'node:stream';
import { SMTP_REPLIES, type SmtpReplySpec } from './smtp-replies.js';

/** Header bytes read at most: a header section longer than this cannot be checked and is refused. */
export const MAX_FROM_HEADER_SECTION_BYTES = 64 * 1024;

/**
 * Security (issue 17, "The From header"): the envelope sender is checked at MAIL, but the address a reader sees is
 * the header's From (RFC 5322 §3.6.2), and not every upstream refuses one the login may not send as (Exchange does,
 * with SendAs rights; Graph sends as the header's From). This stage reads the header section as the message streams
 * (passing every byte on, keeping at most 64 KiB of the header, nothing of the body) and, when the section has
 * ended, fails the stream with `refusal` set if the From header is not allowed: the upstream transaction is then
 * abandoned before its final "." (message-stages.ts) and the client told 550 5.7.1 after its own.
 *
 * Refused: a From address that `allowed` rejects, more than one From header (readers disagree on which one they
 * show), a From header with no address in it, and a header section over the cap. A message without From passes:
 * RFC 5322 requires one, and an upstream fills it from the envelope sender (already checked) or refuses it. Runs
 * after the line-ending normaliser, so lines end in CRLF.
 */
export class FromHeaderGuard extends Transform {
  refusal: SmtpReplySpec | null = null;
  /** Why it was refused, for the message trace and the log (addresses only, never the body). */
  reason: string | null = null;
  private head: Buffer[] = [];
  private headBytes = 0;
  private decided = false;

  constructor(private readonly allowed: (address: string) => boolean) {
    super();
  }

  override _transform(chunk: Buffer, _encoding: BufferEncoding, callback: TransformCallback): void {
    if (this.decided) return callback(null, chunk);
    this.head.push(chunk);
    this.headBytes += chunk.length;
    const head = Buffer.concat(this.head);
    this.head = [head];
    // The header section ends at the first empty line (RFC 5322 §2.1); an empty first line means no header at all.
    const end = head.subarray(0, 2).equals(Buffer.from('\r\n')) ? 0 : head.indexOf('\r\n\r\n');
    if (end >= 0) return this.decide(head.subarray(0, end).toString('utf8'), chunk, callback);
    if (this.headBytes > MAX_FROM_HEADER_SECTION_BYTES) return this.refuse(`header section over ${MAX_FROM_HEADER_SECTION_BYTES} bytes`, callback);
    callback(null, chunk);
  }

  override _flush(callback: TransformCallback): void {
    // A message that is all header (no empty line): decided on what there is, before the end goes upstream.
    if (this.decided) return callback();
    this.decide(Buffer.concat(this.head).toString('utf8'), null, (error) => callback(error));
  }

  private decide(header: string, chunk: Buffer | null, callback: TransformCallback): void {
    this.decided = true;
    this.head = [];
    const verdict = checkFromHeader(header, this.allowed);
    if (verdict !== null) return this.refuse(verdict, callback);
    callback(null, chunk ?? undefined);
  }

  private refuse(reason: string, callback: TransformCallback): void {
    this.decided = true;
    this.head = [];
    this.refusal = SMTP_REPLIES.fromHeaderDenied;
    this.reason = reason;
    callback(new Error(`From header refused: ${reason}`));
  }
}

/** Why a header section's From is refused, or null when it is allowed (or absent). */
export function checkFromHeader(header: string, allowed: (address: string) => boolean): string | null {
  const unfolded = header.replace(/\r\n[ \t]+/g, ' ');
  const fields = unfolded.split('\r\n').filter((line) => /^from[ \t]*:/i.test(line));
  if (fields.length === 0) return null;
  if (fields.length > 1) return `${fields.length} From headers`;
  const addresses = fromAddresses(fields[0]!.replace(/^from[ \t]*:/i, ''));
  if (addresses.length === 0) return 'no address in the From header';
  const denied = addresses.filter((a) => !allowed(a));
  return denied.length === 0 ? null : `From ${denied.slice(0, 3).join(', ')} not allowed for this login`;
}

/**
 * The addresses of a From field's value (RFC 5322 §3.4 mailbox-list): `<addr>` of each name-addr, or each bare
 * addr-spec. Comments and quoted display names are removed first, so a display name holding an address
 * (`"boss@example.com" <me@example.com>`) is not taken for one.
 */
export function fromAddresses(value: string): string[] {
  let text = value.replace(/"(?:[^"\\]|\\.)*"/g, '""');
  for (let previous = ''; previous !== text; ) [previous, text] = [text, text.replace(/\((?:[^()\\]|\\.)*\)/g, ' ')];
  const bracketed = [...text.matchAll(/<([^<>]*)>/g)].map((m) => m[1]!.trim());
  const rest = text.replace(/<[^<>]*>/g, ' ');
  // A name-addr's display name is words without "@"; what is left with an "@" is a bare addr-spec (or a group's).
  const bare = rest
    .split(/[,;:]/)
    .map((part) => part.trim())
    .filter((part) => part.includes('@'))
    .map((part) => part.split(/\s+/).find((word) => word.includes('@'))!);
  return [...bracketed, ...bare].filter((a) => a !== '').map((a) => a.toLowerCase());
}
