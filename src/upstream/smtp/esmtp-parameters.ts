/** RFC 3461 §4: xtext encodes "+", "=" and anything outside printable ASCII as "+HH". */
function encodeXtext(value: string): string {
  return [...Buffer.from(value, 'utf8')]
    .map((byte) => (byte < 33 || byte > 126 || byte === 0x2b || byte === 0x3d ? `+${byte.toString(16).toUpperCase().padStart(2, '0')}` : String.fromCharCode(byte)))
    .join('');
}

/**
 * The parameters passgate relays: SIZE (RFC 1870), BODY (RFC 6152), SMTPUTF8 (RFC 6531), RET, ENVID, NOTIFY and
 * ORCPT (RFC 3461 DSN). Anything else a client sends stays with passgate: an upstream should not receive
 * extensions it never advertised to passgate's EHLO.
 */
const RELAYED = new Set(['SIZE', 'BODY', 'SMTPUTF8', 'RET', 'ENVID', 'NOTIFY', 'ORCPT']);

/**
 * Rebuilds the relayed ESMTP parameters of MAIL or RCPT as the client sent them. smtp-server hands them over
 * xtext-decoded, so values are encoded again; flags stay bare.
 */
export function formatEsmtpParameters(args: Record<string, string | boolean> | false | undefined): string {
  if (!args) return '';
  return Object.entries(args)
    .filter(([key]) => RELAYED.has(key.toUpperCase()))
    .map(([key, value]) => (value === true ? ` ${key}` : ` ${key}=${encodeXtext(String(value))}`))
    .join('');
}
