/** One POP3 command line: the keyword (upper case), its arguments split on spaces, and the text after the keyword. */
export interface Pop3Command {
  name: string;
  args: string[];
  /** Everything after the keyword and its one space, as sent (PASS takes it whole: a password may hold spaces). */
  rest: string;
}

/**
 * Parses a command line without its CRLF (RFC 1939 §3, RFC 2449 §3): a case-insensitive keyword, then arguments
 * separated by single spaces. Pure; never throws. null for an empty line or a keyword that is not 3-4 letters
 * (RFC 2449: keywords are three or four characters).
 */
export function parsePop3Command(line: string): Pop3Command | null {
  const space = line.indexOf(' ');
  const keyword = space < 0 ? line : line.slice(0, space);
  if (!/^[A-Za-z]{3,4}$/.test(keyword)) return null;
  const rest = space < 0 ? '' : line.slice(space + 1);
  return { name: keyword.toUpperCase(), args: rest === '' ? [] : rest.split(' ').filter((a) => a !== ''), rest };
}

/**
 * The credentials of a SASL PLAIN response (RFC 4616): base64 of `authzid NUL authcid NUL password`. `*` cancels
 * (RFC 5034 §4), `=` is an empty response. null when cancelled or not PLAIN's shape.
 */
export function decodeSaslPlain(response: string): { authzid: string; authcid: string; password: string } | null {
  if (response === '*') return null;
  const text = response === '=' ? '' : response.trim();
  if (!/^[A-Za-z0-9+/]*={0,2}$/.test(text)) return null;
  const parts = Buffer.from(text, 'base64').toString('utf8').split('\0');
  if (parts.length !== 3) return null;
  const [authzid, authcid, password] = parts as [string, string, string];
  return { authzid, authcid, password };
}
