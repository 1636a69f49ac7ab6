import { extractTag, ImapCommandParser, trailingLiteral, type ImapValue } from './imap-command-parser.js';

/**
 * Frames the pre-authentication IMAP stream into commands: lines, literals (RFC 3501 §4.3, §7.5; RFC 7888) and
 * SASL continuation lines (RFC 3501 §6.2.2). Pure: bytes in, events out; the session writes the replies.
 *
 * Memory is bounded by the options whatever a client sends: a command holds at most `maxLineBytes` of line text
 * and `maxLiteralBytes` of literal octets, and input waiting behind a paused reader at most `maxPendingBytes`.
 */

export interface ImapLineReaderOptions {
  /** The most octets of line text in one command, all its lines together, line endings and literals not counted. */
  maxLineBytes?: number;
  /** The most literal octets in one command, all its literals together. */
  maxLiteralBytes?: number;
  /** RFC 7888 §4 (LITERAL-), RFC 9051 §4.3: a non-synchronizing literal is at most 4096 octets. */
  maxNonSyncLiteralBytes?: number;
  /** The most unparsed octets held while paused (pipelined input); default maxLineBytes + maxLiteralBytes. */
  maxPendingBytes?: number;
}

export type ReaderErrorCode =
  /** Not a valid command: the session answers `tag BAD` (or `* BAD` without a tag). Never fatal. */
  | 'syntax'
  /** The line (or SASL line) outgrew maxLineBytes. Always fatal: the rest of it is not read. */
  | 'line-too-long'
  /**
   * A literal over the limits. Synchronizing: not fatal, the client waits for "+" that never comes, so the
   * session answers the tag (RFC 9051 §7.1 TOOBIG) and the reader goes on with the next command. Non-synchronizing:
   * fatal, the octets are on their way (RFC 7888 §4: the server may close the connection).
   */
  | 'literal-too-large'
  /** More than maxPendingBytes arrived while the reader was paused. Fatal. */
  | 'pending-overflow';

export type ReaderEvent =
  /** A complete command. `raw` is its exact octets, literals included: it holds credentials, never log it. */
  | { type: 'command'; tag: string; name: string; args: ImapValue[]; raw: Buffer }
  /** A synchronizing literal was accepted: the session sends "+ Ready for literal data" (RFC 3501 §7.5). */
  | { type: 'continue-literal'; tag: string; size: number }
  /** The line after expectSaslLine(), without its line ending: base64 or "*" (cancel). Holds credentials. */
  | { type: 'sasl'; line: string }
  /** After a fatal error the reader is closed: push() returns nothing more, pending() is empty. */
  | { type: 'error'; code: ReaderErrorCode; tag: string | null; reason: string; fatal: boolean };

const LF = 0x0a;
const CR = 0x0d;
const EMPTY = Buffer.alloc(0);

type Mode =
  | 'line' // reading a line of a command (or the SASL line)
  | 'literal' // reading `remaining` literal octets that start at `literalStart`
  | 'skip' // dropping the `remaining` octets of a non-synchronizing literal of a rejected command
  | 'discard' // dropping the rest of a rejected command, up to its line end
  | 'closed';

/**
 * Incremental reader. After each `command` and `sasl` event it pauses: nothing more is parsed until `resume()`,
 * so that a LOGIN that succeeds can hand `pending()` — the octets after it, untouched — to the upstream.
 */
export class ImapLineReader {
  readonly #maxLine: number;
  readonly #maxLiteral: number;
  readonly #maxNonSync: number;
  readonly #maxPending: number;
  /** Unconsumed input is store[head, tail): the current command from its first octet, then whatever follows. */
  #store = Buffer.alloc(0);
  #head = 0;
  #tail = 0;
  /** Where scanning continues. */
  #scan = 0;
  /** Start of the current line. */
  #lineStart = 0;
  #literalStart = 0;
  #remaining = 0;
  #mode: Mode = 'line';
  #parser = new ImapCommandParser();
  #lineBytes = 0;
  #literalBytes = 0;
  #paused = false;
  #saslExpected = false;

  constructor(options: ImapLineReaderOptions = {}) {
    this.#maxLine = options.maxLineBytes ?? 8192;
    this.#maxLiteral = options.maxLiteralBytes ?? 8192;
    this.#maxNonSync = Math.min(options.maxNonSyncLiteralBytes ?? 4096, this.#maxLiteral);
    this.#maxPending = options.maxPendingBytes ?? this.#maxLine + this.#maxLiteral;
  }

  get paused(): boolean {
    return this.#paused;
  }

  get closed(): boolean {
    return this.#mode === 'closed';
  }

  /** Octets of memory the reader holds now (for tests and metrics). */
  get retainedBytes(): number {
    return this.#store.length;
  }

  /** Takes input; returns the events it completes, in order. */
  push(chunk: Buffer): ReaderEvent[] {
    const events: ReaderEvent[] = [];
    // Fed in slices, each parsed before the next is stored, so a large chunk cannot grow the buffer past the limits.
    const slice = Math.max(this.#maxLine, 1024);
    for (let offset = 0; offset < chunk.length && this.#mode !== 'closed'; offset += slice) {
      this.#append(chunk.subarray(offset, offset + slice));
      if (this.#paused) {
        if (this.#tail - this.#head > this.#maxPending) this.#fail(events, 'pending-overflow', null, 'too much input while paused');
      } else {
        this.#run(events);
      }
    }
    return events;
  }

  /** Parses the input held since the last `command` or `sasl` event; returns the events, as push() does. */
  resume(): ReaderEvent[] {
    const events: ReaderEvent[] = [];
    if (!this.#paused) return events;
    this.#paused = false;
    this.#run(events);
    return events;
  }

  /**
   * The octets received and not yet consumed by an event, untouched. After a `command` event: what the client
   * sent after that command (e.g. pipelined commands after LOGIN, which belong to the upstream).
   */
  pending(): Buffer {
    return Buffer.from(this.#store.subarray(this.#head, this.#tail));
  }

  /**
   * pending(), and the reader closes: it holds no buffer from here on (push() returns nothing, pending() is empty).
   * For the hand-over to the upstream, after which the session reads nothing itself.
   */
  release(): Buffer {
    const rest = this.pending();
    this.#close();
    return rest;
  }

  /**
   * RFC 3501 §6.2.2: after the session sends a "+" continuation for AUTHENTICATE, the next line is a SASL response,
   * not a command: it is emitted as a `sasl` event. Call it between commands (normally while paused).
   */
  expectSaslLine(): void {
    if (this.#mode === 'closed') return;
    if (this.#mode !== 'line' || this.#lineStart !== this.#head || this.#parser.tag !== null) {
      throw new Error('expectSaslLine() called in the middle of a command');
    }
    this.#saslExpected = true;
  }

  #run(events: ReaderEvent[]): void {
    while (!this.#paused) {
      if (this.#mode === 'line' || this.#mode === 'discard') {
        if (!this.#readLine(events)) return;
      } else if (this.#mode === 'literal' || this.#mode === 'skip') {
        if (!this.#readLiteral(events)) return;
      } else {
        return;
      }
    }
  }

  /** Handles one line if complete; false when more input is needed or the reader closed. */
  #readLine(events: ReaderEvent[]): boolean {
    const lf = this.#store.subarray(this.#scan, this.#tail).indexOf(LF);
    if (lf < 0) {
      this.#scan = this.#tail;
      // A CR at the end may be the first half of CRLF: it is not counted yet.
      const crPending = this.#tail > this.#lineStart && this.#store[this.#tail - 1] === CR ? 1 : 0;
      this.#checkLineLength(events, this.#tail - this.#lineStart - crPending);
      return false;
    }
    const end = this.#scan + lf;
    this.#scan = end + 1;
    // RFC 3501 §2.2 says CRLF; a bare LF is accepted too (scripts, `openssl s_client` without -crlf).
    const textEnd = end > this.#lineStart && this.#store[end - 1] === CR ? end - 1 : end;
    if (!this.#checkLineLength(events, textEnd - this.#lineStart)) return false;
    this.#lineBytes += textEnd - this.#lineStart;
    const text = this.#store.subarray(this.#lineStart, textEnd);
    if (this.#mode === 'discard') return this.#discarded(events, text);
    if (this.#saslExpected) {
      this.#saslExpected = false;
      events.push({ type: 'sasl', line: text.toString('latin1') });
      this.#endCommand(true);
      return true;
    }
    const outcome = this.#parser.line(text);
    if (outcome.kind === 'command') {
      const raw = Buffer.from(this.#store.subarray(this.#head, this.#scan));
      events.push({ type: 'command', ...outcome.command, raw });
      this.#endCommand(true);
    } else if (outcome.kind === 'literal') {
      this.#announced(events, outcome.size, outcome.sync);
    } else {
      this.#syntaxError(events, outcome.reason);
      return this.#discarded(events, text);
    }
    return this.#mode !== 'closed';
  }

  /** False (and closed) when the command's line text outgrew maxLineBytes. */
  #checkLineLength(events: ReaderEvent[], current: number): boolean {
    if (this.#lineBytes + current <= this.#maxLine) return true;
    // The tag of a line cut short is taken from the first maxLineBytes octets only, however the input was chunked.
    const firstLine = this.#store.subarray(this.#head, Math.min(this.#tail, this.#head + this.#maxLine));
    const tag = this.#mode === 'discard' || this.#saslExpected ? null : (this.#parser.tag ?? extractTag(firstLine));
    this.#fail(events, 'line-too-long', tag, 'command line too long');
    return false;
  }

  #announced(events: ReaderEvent[], size: number, sync: boolean): void {
    const tag = this.#parser.tag!;
    const fits = size <= (sync ? this.#maxLiteral : this.#maxNonSync) && this.#literalBytes + size <= this.#maxLiteral;
    if (!fits) {
      if (!sync) return this.#fail(events, 'literal-too-large', tag, 'non-synchronizing literal too large');
      // RFC 3501 §7.5: without "+" the client does not send the octets; the command is over.
      events.push({ type: 'error', code: 'literal-too-large', tag, reason: 'literal too large', fatal: false });
      return this.#endCommand(false);
    }
    if (sync) events.push({ type: 'continue-literal', tag, size });
    this.#literalBytes += size;
    this.#startLiteral('literal', size);
  }

  #readLiteral(events: ReaderEvent[]): boolean {
    const take = Math.min(this.#remaining, this.#tail - this.#scan);
    this.#scan += take;
    this.#remaining -= take;
    if (this.#mode === 'skip') this.#head = this.#scan; // dropped octets are not kept
    if (this.#remaining > 0) return false;
    if (this.#mode === 'skip') {
      this.#startLine('discard');
      return true;
    }
    const reason = this.#parser.literal(Buffer.from(this.#store.subarray(this.#literalStart, this.#scan)));
    if (reason === null) {
      this.#startLine('line');
      return true;
    }
    this.#syntaxError(events, reason);
    this.#head = this.#scan;
    this.#lineBytes = 0;
    this.#startLine('discard');
    return true;
  }

  /**
   * A rejected line is dropped; if it announced a non-synchronizing literal, those octets are coming anyway and
   * are skipped with the rest of the command, so they are never read as commands (RFC 7888 §4).
   */
  #discarded(events: ReaderEvent[], text: Buffer): boolean {
    const literal = trailingLiteral(text);
    if (literal === null || literal.sync) {
      this.#endCommand(false);
      return true;
    }
    if (literal.size > this.#maxNonSync) {
      this.#fail(events, 'literal-too-large', null, 'non-synchronizing literal too large');
      return false;
    }
    this.#head = this.#scan;
    this.#lineBytes = 0;
    this.#startLiteral('skip', literal.size);
    return true;
  }

  #syntaxError(events: ReaderEvent[], reason: string): void {
    events.push({ type: 'error', code: 'syntax', tag: this.#parser.tag, reason, fatal: false });
  }

  #startLiteral(mode: 'literal' | 'skip', size: number): void {
    this.#mode = mode;
    this.#literalStart = this.#scan;
    this.#remaining = size;
  }

  #startLine(mode: 'line' | 'discard'): void {
    this.#mode = mode;
    this.#lineStart = this.#scan;
  }

  /** Consumes the command up to the scan position and starts the next one. */
  #endCommand(pause: boolean): void {
    this.#head = this.#scan;
    this.#parser = new ImapCommandParser();
    this.#lineBytes = 0;
    this.#literalBytes = 0;
    this.#startLine('line');
    this.#paused = pause;
  }

  #fail(events: ReaderEvent[], code: ReaderErrorCode, tag: string | null, reason: string): void {
    events.push({ type: 'error', code, tag, reason, fatal: true });
    this.#close();
  }

  #close(): void {
    this.#mode = 'closed';
    this.#paused = false;
    this.#saslExpected = false;
    this.#store = EMPTY;
    this.#head = this.#tail = this.#scan = this.#lineStart = this.#literalStart = 0;
  }

  /** Stores input after the unconsumed octets, compacting or growing the buffer as needed. */
  #append(data: Buffer): void {
    if (this.#tail + data.length > this.#store.length) {
      const live = this.#tail - this.#head;
      const target = live + data.length > this.#store.length ? Buffer.allocUnsafe(Math.max(2 * this.#store.length, live + data.length)) : this.#store;
      this.#store.copy(target, 0, this.#head, this.#tail);
      this.#store = target;
      const shift = this.#head;
      this.#head = 0;
      this.#tail = live;
      this.#scan -= shift;
      this.#lineStart -= shift;
      this.#literalStart -= shift;
    }
    data.copy(this.#store, this.#tail);
    this.#tail += data.length;
  }
}
