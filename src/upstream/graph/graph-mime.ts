import { domainToASCII } from 'node:url';

const CRLF = Buffer.from('\r\n');

/** The header section (up to, not including, the empty line) and where the body starts. Lines end in CRLF. */
export function splitHeader(message: Buffer): { header: string; body: Buffer } {
  if (message.subarray(0, 2).equals(CRLF)) return { header: '', body: message.subarray(2) };
  const end = message.indexOf('\r\n\r\n');
  if (end < 0) return { header: message.toString('latin1'), body: Buffer.alloc(0) };
  return { header: message.subarray(0, end).toString('latin1'), body: message.subarray(end + 4) };
}

/** The header's fields, unfolded (RFC 5322 §2.2.3), with their names as written. */
export function headerFields(header: string): { name: string; value: string }[] {
  if (header === '') return [];
  return header
    .replace(/\r\n[ \t]+/g, ' ')
    .split('\r\n')
    .map((line) => {
      const colon = line.indexOf(':');
      return colon < 0 ? { name: '', value: line } : { name: line.slice(0, colon).trim(), value: line.slice(colon + 1) };
    });
}

/** An address compared as the envelope has it: lower case, the domain in its ASCII form (IDN). */
export function comparableAddress(address: string): string {
  const at = address.lastIndexOf('@');
  if (at < 0) return address.toLowerCase();
  const domain = address.slice(at + 1);
  return `${address.slice(0, at)}@${domainToASCII(domain) || domain}`.toLowerCase();
}

/**
 * The addresses of an address-list field (RFC 5322 §3.4): `<addr>` of each name-addr, or each bare addr-spec;
 * quoted display names and comments are removed first, so a display name holding an address is not taken for one.
 * A group with no members (`undisclosed-recipients:;`) has none.
 */
export function listAddresses(value: string): string[] {
  let text = value.replace(/"(?:[^"\\]|\\.)*"/g, '""');
  for (let previous = ''; previous !== text; ) [previous, text] = [text, text.replace(/\((?:[^()\\]|\\.)*\)/g, ' ')];
  const bracketed = [...text.matchAll(/<([^<>]*)>/g)].map((m) => m[1]!.trim());
  const bare = text
    .replace(/<[^<>]*>/g, ' ')
    .split(/[,;:]/)
    .map((part) => part.trim())
    .filter((part) => part.includes('@'))
    .map((part) => part.split(/\s+/).find((word) => word.includes('@'))!);
  return [...bracketed, ...bare].filter((a) => a !== '');
}

/** The recipients Graph reads from a MIME message's header: To, Cc and Bcc (every field of each). */
export function headerRecipients(header: string): { to: string[]; cc: string[]; bcc: string[] } {
  const out = { to: [] as string[], cc: [] as string[], bcc: [] as string[] };
  for (const { name, value } of headerFields(header)) {
    const key = name.toLowerCase();
    if (key === 'to' || key === 'cc' || key === 'bcc') out[key].push(...listAddresses(value));
  }
  return out;
}

export type PreparedMime = { ok: true; mime: Buffer; bcc: string[] } | { ok: false; notInEnvelope: string[] };

/**
 * The message as Graph must get it so that exactly the envelope's recipients get it (issue 20, "nothing lost,
 * nothing extra"). With a MIME sendMail Graph sends to the header's To, Cc and Bcc, never to an envelope:
 *  - a header recipient the client did not name in RCPT TO would get a copy it was never meant to: refused
 *    (`notInEnvelope`), nothing sent;
 *  - every envelope recipient not in To or Cc is written into one Bcc field (replacing any Bcc fields the client
 *    left in), which Exchange delivers and never shows to the other recipients.
 * Every other byte of the message is kept as the client sent it.
 */
export function prepareMime(message: Buffer, envelope: readonly string[]): PreparedMime {
  const { header, body } = splitHeader(message);
  // The header is kept as bytes (latin1 round-trips them); its addresses are compared as the UTF-8 they are
  // (RFC 6532), like the envelope's.
  const utf8 = (a: string) => Buffer.from(a, 'latin1').toString('utf8');
  const raw = headerRecipients(header);
  const listed = { to: raw.to.map(utf8), cc: raw.cc.map(utf8), bcc: raw.bcc.map(utf8) };
  const wanted = new Set(envelope.map(comparableAddress));
  const notInEnvelope = [...new Set([...listed.to, ...listed.cc, ...listed.bcc].map(comparableAddress))].filter((a) => !wanted.has(a));
  if (notInEnvelope.length > 0) return { ok: false, notInEnvelope };
  const shown = new Set([...listed.to, ...listed.cc].map(comparableAddress));
  const bcc = [...new Set(envelope)].filter((a) => !shown.has(comparableAddress(a)));
  const kept = withoutFields(header, 'bcc');
  const parts = kept === '' ? [] : [Buffer.from(`${kept}\r\n`, 'latin1')];
  if (bcc.length > 0) parts.push(Buffer.from(`Bcc: ${bcc.join(',\r\n ')}\r\n`, 'utf8'));
  return { ok: true, mime: Buffer.concat([...parts, Buffer.from('\r\n'), body]), bcc };
}

/** The header section without every field named `name` (and its folded lines). */
export function withoutFields(header: string, name: string): string {
  if (header === '') return '';
  const out: string[] = [];
  let dropping = false;
  for (const line of header.split('\r\n')) {
    if (/^[ \t]/.test(line)) {
      if (!dropping) out.push(line);
      continue;
    }
    dropping = line.slice(0, line.indexOf(':')).trim().toLowerCase() === name;
    if (!dropping) out.push(line);
  }
  return out.join('\r\n');
}
