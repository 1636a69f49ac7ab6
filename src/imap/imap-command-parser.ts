/**
 * The grammar of an IMAP command as a client sends it (RFC 3501 §9, RFC 9051 §9): tag, command name, arguments.
 * Pure: bytes in, values out; the line reader does the framing and feeds one line at a time, because a literal
 * (RFC 3501 §4.3) splits one command into several lines with literal octets between them.
 *
 * Arguments are parsed generically (atoms, quoted strings, literals, NIL, parenthesized lists) for every command,
 * so that the session, not the parser, decides what it accepts.
 */

/** A parsed argument. Strings are decoded as UTF-8; `bytes` keeps the exact octets of quoted strings and literals. */
export type ImapValue =
  | { type: 'atom'; value: string }
  /** The atom NIL, any case; `value` is the text as sent, because NIL is also a valid astring (a user "nil"). */
  | { type: 'nil'; value: string }
  | { type: 'quoted'; value: string; bytes: Buffer }
  | { type: 'literal'; value: string; bytes: Buffer }
  | { type: 'list'; value: ImapValue[] };

export interface ImapCommand {
  tag: string;
  /** Upper-cased. */
  name: string;
  args: ImapValue[];
}

/** What one line (without its line ending) did to the command being parsed. */
export type LineOutcome =
  | { kind: 'command'; command: ImapCommand }
  /** The line ended in a literal announcement: `size` octets follow, then the next line of the same command. */
  | { kind: 'literal'; size: number; sync: boolean }
  | { kind: 'error'; reason: string };

const SP = 0x20;
const DQUOTE = 0x22;
const BACKSLASH = 0x5c;
const LPAREN = 0x28;
const RPAREN = 0x29;
const LBRACE = 0x7b;
const LBRACKET = 0x5b;
const RBRACKET = 0x5d;
const TILDE = 0x7e;

/** RFC 3501 §9: CTL = %x00-1F / %x7F; CHAR = %x01-7F. Octets above 0x7F are never atom characters. */
const isPrintable = (b: number): boolean => b > 0x20 && b < 0x7f;
const ATOM_SPECIALS = new Set(Buffer.from('(){%*"\\]', 'latin1'));
/** RFC 3501 §9: ATOM-CHAR = any CHAR except atom-specials: ( ) { SP CTL % * " \ ] */
const isAtomChar = (b: number): boolean => isPrintable(b) && !ATOM_SPECIALS.has(b);
/** RFC 3501 §9: ASTRING-CHAR = ATOM-CHAR / "]". */
const isAStringChar = (b: number): boolean => isAtomChar(b) || b === RBRACKET;
/** RFC 3501 §9: tag = 1*<any ASTRING-CHAR except "+">. */
const isTagChar = (b: number): boolean => isAStringChar(b) && b !== 0x2b;
/**
 * Arguments of any command: ASTRING-CHARs plus the characters other productions add to bare tokens — "\" (flags),
 * "%" and "*" (LIST wildcards, sequence sets "1:*"). The delimiters ( ) { " and SP end a token.
 */
const isArgChar = (b: number): boolean => isPrintable(b) && b !== LPAREN && b !== RPAREN && b !== LBRACE && b !== DQUOTE;
/** RFC 3501 §9 fetch-att, RFC 3516 §4.2: the atoms a bracketed section (which may hold SP and parens) follows. */
const SECTION_ATOMS = new Set(['BODY', 'BODY.PEEK', 'BINARY', 'BINARY.PEEK', 'BINARY.SIZE']);
/** RFC 3501 §9 literal, RFC 3516 literal8 ("~{"), RFC 7888 non-synchronizing "+"; it must end the line. */
const LITERAL_MARKER = /^(~?)\{([0-9]{1,10})(\+?)\}$/;
/** RFC 3501 §9: number is an unsigned 32-bit integer. */
const MAX_NUMBER = 0xffff_ffff;
/** Real commands nest lists two or three deep (SEARCH); the cap keeps recursive consumers of the tree safe. */
const MAX_LIST_DEPTH = 32;

/** The literal announced at the end of a line, or null; used to resynchronize after a rejected line too. */
export function trailingLiteral(line: Buffer): { size: number; sync: boolean; binary: boolean } | null {
  const brace = line.lastIndexOf(LBRACE);
  if (brace < 0) return null;
  const start = brace > 0 && line[brace - 1] === TILDE ? brace - 1 : brace;
  const match = LITERAL_MARKER.exec(line.subarray(start).toString('latin1'));
  if (match === null) return null;
  return { size: Number(match[2]), sync: match[3] === '', binary: match[1] === '~' };
}

/** The tag a line starts with, if it is a valid tag followed by SP; for error replies. */
export function extractTag(line: Buffer): string | null {
  let end = 0;
  while (end < line.length && isTagChar(line[end]!)) end++;
  return end > 0 && line[end] === SP ? line.subarray(0, end).toString('latin1') : null;
}

/** RFC 3501 §9: astring = 1*ASTRING-CHAR / string. The argument as an astring (LOGIN's user and password), or null. */
export function asAString(value: ImapValue | undefined): string | null {
  if (value === undefined) return null;
  if (value.type === 'quoted' || value.type === 'literal') return value.value;
  if (value.type !== 'atom' && value.type !== 'nil') return null;
  for (let i = 0; i < value.value.length; i++) if (!isAStringChar(value.value.charCodeAt(i))) return null;
  return value.value;
}

/**
 * Incremental parser of one command: `line()` for each line, `literal()` for the octets each literal announced.
 * Tokens never span lines (a quoted string cannot hold CR or LF), so each line is parsed once, as it arrives.
 */
export class ImapCommandParser {
  #tag: string | null = null;
  #name = '';
  /** Open lists; [0] is the argument list itself. */
  readonly #stack: ImapValue[][] = [[]];
  /** A value just ended: the next token must be SP or ")". */
  #needSeparator = false;
  #literal: { binary: boolean } | null = null;

  /** The command's tag, once its first line has been parsed. */
  get tag(): string | null {
    return this.#tag;
  }

  /** Parses one line, without its CRLF. */
  line(text: Buffer): LineOutcome {
    if (this.#literal !== null) throw new Error('ImapCommandParser.line() called while a literal is expected');
    let pos = 0;
    if (this.#tag === null) {
      const start = this.#parseStart(text);
      if (typeof start === 'string') return { kind: 'error', reason: start };
      pos = start;
    }
    return this.#parseArgs(text, pos);
  }

  /** The octets of the literal the last line announced; returns an error reason, or null when accepted. */
  literal(data: Buffer): string | null {
    if (this.#literal === null) throw new Error('ImapCommandParser.literal() called without a literal announced');
    // RFC 3501 §4.3: a literal is CHAR8 (no NUL); only literal8 (RFC 3516, "~{n}") may carry NUL.
    if (!this.#literal.binary && data.includes(0)) return 'NUL octet in a literal';
    this.#literal = null;
    this.#push({ type: 'literal', value: data.toString('utf8'), bytes: data });
    return null;
  }

  /** Tag SP command-name; returns where the arguments start, or an error reason. */
  #parseStart(text: Buffer): number | string {
    let pos = 0;
    while (pos < text.length && isTagChar(text[pos]!)) pos++;
    if (pos === 0 || (pos < text.length && text[pos] !== SP)) return text.length === 0 ? 'empty command line' : 'invalid tag';
    this.#tag = text.subarray(0, pos).toString('latin1');
    while (text[pos] === SP) pos++;
    const nameStart = pos;
    while (pos < text.length && isAtomChar(text[pos]!)) pos++;
    if (pos === nameStart) return 'missing command name';
    if (pos < text.length && text[pos] !== SP) return 'invalid command name';
    this.#name = text.subarray(nameStart, pos).toString('latin1').toUpperCase();
    return pos;
  }

  #parseArgs(text: Buffer, from: number): LineOutcome {
    let pos = from;
    while (pos < text.length) {
      const b = text[pos]!;
      // Postel: RFC 3501 §9 puts exactly one SP between arguments; runs of SP and trailing SP are tolerated.
      if (b === SP) {
        this.#needSeparator = false;
        pos++;
        continue;
      }
      if (b === RPAREN) {
        if (this.#stack.length === 1) return error('unbalanced ")"');
        const list = this.#stack.pop()!;
        this.#push({ type: 'list', value: list });
        pos++;
        continue;
      }
      if (b !== LPAREN && b !== LBRACE && b !== DQUOTE && !isArgChar(b)) return error('invalid octet in arguments');
      if (this.#needSeparator) return error('expected SP between arguments');
      if (b === LPAREN) {
        if (this.#stack.length > MAX_LIST_DEPTH) return error('lists nested too deep');
        this.#stack.push([]);
        pos++;
        continue;
      }
      if (b === LBRACE || (b === TILDE && text[pos + 1] === LBRACE)) return this.#announceLiteral(text.subarray(pos));
      const end = b === DQUOTE ? this.#parseQuoted(text, pos) : this.#parseAtom(text, pos);
      if (typeof end === 'string') return error(end);
      pos = end;
    }
    if (this.#stack.length > 1) return error('unclosed "("');
    return { kind: 'command', command: { tag: this.#tag!, name: this.#name, args: this.#stack[0]! } };
  }

  #announceLiteral(rest: Buffer): LineOutcome {
    const match = LITERAL_MARKER.exec(rest.toString('latin1'));
    if (match === null) return error('literal announcement must end the line');
    const size = Number(match[2]);
    if (size > MAX_NUMBER) return error('literal size out of range');
    this.#literal = { binary: match[1] === '~' };
    return { kind: 'literal', size, sync: match[3] === '' };
  }

  /** RFC 3501 §4.3, §9: quoted = DQUOTE *QUOTED-CHAR DQUOTE, with only \" and \\ as escapes. */
  #parseQuoted(text: Buffer, open: number): number | string {
    const out = Buffer.allocUnsafe(text.length - open);
    let length = 0;
    for (let pos = open + 1; pos < text.length; pos++) {
      let b = text[pos]!;
      if (b === DQUOTE) {
        const bytes = Buffer.from(out.subarray(0, length));
        this.#push({ type: 'quoted', value: bytes.toString('utf8'), bytes });
        return pos + 1;
      }
      if (b === BACKSLASH) {
        b = text[++pos] ?? 0;
        if (b !== DQUOTE && b !== BACKSLASH) return 'invalid escape in quoted string';
      }
      // RFC 3501 allows 7-bit TEXT-CHAR, RFC 9051 adds UTF-8; legacy clients send other 8-bit octets in
      // passwords, kept exactly in `bytes`. CR and LF never reach here (they end the line); NUL is never text.
      if (b === 0x00 || b === 0x0d) return 'invalid octet in quoted string';
      out[length++] = b;
    }
    return 'unterminated quoted string';
  }

  #parseAtom(text: Buffer, start: number): number | string {
    let pos = start;
    while (pos < text.length && isArgChar(text[pos]!)) {
      // RFC 3501 §6.4.5: BODY[HEADER.FIELDS (FROM)] — after these atoms, "[" opens a section holding SP and parens.
      if (text[pos] === LBRACKET && SECTION_ATOMS.has(text.subarray(start, pos).toString('latin1').toUpperCase())) {
        const close = text.indexOf(RBRACKET, pos);
        if (close < 0) return 'unterminated section';
        for (let i = pos + 1; i < close; i++) if (text[i] !== SP && !isPrintable(text[i]!)) return 'invalid octet in section';
        pos = close;
      }
      pos++;
    }
    const value = text.subarray(start, pos).toString('latin1');
    this.#push(value.toUpperCase() === 'NIL' ? { type: 'nil', value } : { type: 'atom', value });
    return pos;
  }

  #push(value: ImapValue): void {
    this.#stack[this.#stack.length - 1]!.push(value);
    this.#needSeparator = true;
  }
}

const error = (reason: string): LineOutcome => ({ kind: 'error', reason });

export type ParseResult = { ok: true; command: ImapCommand } | { ok: false; tag: string | null; reason: string };

/**
 * Parses a whole command: `lines` without their CRLFs, `literals` the octets announced at the end of each line
 * but the last (so `lines.length === literals.length + 1`).
 */
export function parseCommand(lines: readonly Buffer[], literals: readonly Buffer[] = []): ParseResult {
  const parser = new ImapCommandParser();
  for (const [i, line] of lines.entries()) {
    const outcome = parser.line(line);
    if (outcome.kind === 'error') return { ok: false, tag: parser.tag, reason: outcome.reason };
    const literal = literals[i];
    if (outcome.kind === 'command') {
      if (i === lines.length - 1 && literal === undefined) return { ok: true, command: outcome.command };
      return { ok: false, tag: parser.tag, reason: 'command ended before its last line' };
    }
    if (literal === undefined || literal.length !== outcome.size) return { ok: false, tag: parser.tag, reason: 'literal missing or of the wrong size' };
    const reason = parser.literal(literal);
    if (reason !== null) return { ok: false, tag: parser.tag, reason };
  }
  return { ok: false, tag: parser.tag, reason: 'command incomplete' };
}
