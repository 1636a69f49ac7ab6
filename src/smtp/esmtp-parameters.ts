/** RFC 3461 §4: xtext encodes "+", "=" and anything outside printable ASCII as "+HH". */
function encodeXtext(value: string): string {
  return [...Buffer.from(value, 'utf8')]
    .map((byte) => (byte < 33 || byte > 126 || byte === 0x2b || byte === 0x3d ? `+${byte.toString(16).toUpperCase().padStart(2, '0')}` : String.fromCharCode(byte)))
    .join('');
}

/**
 * Rebuilds the ESMTP parameters of MAIL or RCPT (SIZE, BODY, SMTPUTF8, RET, ENVID, NOTIFY, ORCPT, ...) as the
 * client sent them. smtp-server hands them over xtext-decoded, so values are encoded again; flags stay bare.
 */
export function formatEsmtpParameters(args: Record<string, string | boolean> | false | undefined): string {
  if (!args) return '';
  return Object.entries(args)
    .map(([key, value]) => (value === true ? ` ${key}` : ` ${key}=${encodeXtext(String(value))}`))
    .join('');
}
