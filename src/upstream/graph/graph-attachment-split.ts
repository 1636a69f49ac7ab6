import { headerFields, splitHeader } from './graph-mime.js';

/** One part taken out of a message, to go up as a Graph fileAttachment (its decoded bytes). */
export interface GraphAttachment {
  name: string;
  contentType: string;
  contentId: string | null;
  isInline: boolean;
  bytes: Buffer;
}

/** A parameter of a structured header field (`boundary`, `filename`, `name`), quoted or not. */
function parameter(value: string, key: string): string | null {
  const match = new RegExp(`(?:^|;)\\s*${key}\\s*=\\s*(?:"((?:[^"\\\\]|\\\\.)*)"|([^;\\s]+))`, 'i').exec(value);
  if (!match) return null;
  return match[1] !== undefined ? match[1].replace(/\\(.)/g, '$1') : match[2]!;
}

function field(header: string, name: string): string | null {
  return headerFields(header).find((f) => f.name.toLowerCase() === name)?.value.trim() ?? null;
}

interface Part {
  raw: Buffer;
  attachment: GraphAttachment | null;
}

/**
 * Cuts a message too big for one Graph request into a draft that fits (`maxDraftBytes` of MIME) and attachments
 * that go up separately (Microsoft Learn, "Attach large files to Outlook messages": a draft, then an upload session
 * per attachment, then send). Only the top level of a multipart message is cut: its largest leaf parts with a
 * base64 or identity transfer encoding go, largest first, until the rest fits; the first part (the text) always
 * stays. null when the message cannot be cut small enough (not multipart, or one text part too big by itself): the
 * transport then refuses it as too big. Graph keeps an attachment's decoded bytes, name, type and Content-ID, and
 * writes its own MIME around them when it sends.
 */
export function splitAttachments(mime: Buffer, maxDraftBytes: number): { draft: Buffer; attachments: GraphAttachment[] } | null {
  const { header, body } = splitHeader(mime);
  const type = field(header, 'content-type') ?? '';
  const boundary = /^\s*multipart\//i.test(type) ? parameter(type, 'boundary') : null;
  if (boundary === null) return null;
  const delimiter = Buffer.from(`\r\n--${boundary}`, 'latin1');
  // The body as "\r\n" + body so the first delimiter (at the body's start) is found like the others.
  const text = Buffer.concat([Buffer.from('\r\n'), body]);
  const starts: number[] = [];
  for (let at = text.indexOf(delimiter); at >= 0; at = text.indexOf(delimiter, at + delimiter.length)) starts.push(at);
  if (starts.length < 2) return null;
  const preamble = text.subarray(0, starts[0]);
  const parts: Part[] = [];
  let epilogue = Buffer.alloc(0);
  for (let i = 0; i < starts.length; i++) {
    const from = starts[i]! + delimiter.length;
    const next = starts[i + 1];
    const rest = text.subarray(from, next ?? text.length);
    if (rest.subarray(0, 2).toString() === '--') {
      epilogue = text.subarray(starts[i]!);
      break;
    }
    const raw = rest.subarray(rest.indexOf('\r\n') + 2);
    parts.push({ raw, attachment: null });
  }
  const candidates = parts
    .map((part, index) => ({ part, index }))
    .filter(({ index }) => index > 0)
    .sort((a, b) => b.part.raw.length - a.part.raw.length);
  let size = mime.length;
  for (const { part } of candidates) {
    if (size <= maxDraftBytes) break;
    const attachment = decodePart(part.raw);
    if (!attachment) continue;
    part.attachment = attachment;
    size -= part.raw.length + delimiter.length + 2;
  }
  if (size > maxDraftBytes) return null;
  const kept = parts.filter((p) => p.attachment === null).map((p) => Buffer.concat([delimiter, Buffer.from('\r\n'), p.raw]));
  const draft = Buffer.concat([Buffer.from(`${header}\r\n`, 'latin1'), preamble, ...kept, epilogue.length > 0 ? epilogue : Buffer.from(`\r\n--${boundary}--\r\n`)]);
  return { draft, attachments: parts.flatMap((p) => (p.attachment ? [p.attachment] : [])) };
}

/** A leaf part's decoded bytes and description, or null when it is not one passgate takes out (multipart, QP). */
function decodePart(raw: Buffer): GraphAttachment | null {
  const { header, body } = splitHeader(raw);
  const type = field(header, 'content-type') ?? 'application/octet-stream';
  if (/^\s*(multipart|message)\//i.test(type)) return null;
  const encoding = (field(header, 'content-transfer-encoding') ?? '7bit').toLowerCase();
  let bytes: Buffer;
  // Node's base64 decoder skips the line breaks (and any whitespace) of a MIME body itself.
  if (encoding === 'base64') bytes = Buffer.from(body.toString('latin1'), 'base64');
  else if (encoding === 'binary' || encoding === '8bit' || encoding === '7bit') bytes = body;
  else return null;
  const disposition = field(header, 'content-disposition') ?? '';
  const name = parameter(disposition, 'filename') ?? parameter(type, 'name') ?? 'attachment';
  const contentId = field(header, 'content-id')?.replace(/^<|>$/g, '') ?? null;
  return { name, contentType: type.split(';')[0]!.trim(), contentId, isInline: /^\s*inline/i.test(disposition), bytes };
}
