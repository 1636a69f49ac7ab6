/** More than this many bytes of commands not yet handled: stop looking ahead (a client does not pipeline that much). */
const MAX_PENDING = 64 * 1024;

/**
 * What a client has already sent after the command being handled: the bytes smtp-server's parser took in command
 * mode and has not yet handed out as command lines. RFC 2920: a pipelining client sends MAIL, RCPT and DATA
 * together, and knowing that DATA is already there lets passgate send DATA to the provider behind the last RCPT
 * instead of a round trip later (UpstreamSmtpSession#sendDataAhead).
 *
 * Fed by PromptSmtpServer with each chunk the parser takes and each line it dispatches. It answers only when it is
 * sure: a dispatched line that is not what it holds first, or too much held, makes it forget what it holds (and a
 * chunk the parser reads in data mode empties it: those bytes are a message, not commands).
 */
export class CommandLookahead {
  /** Bytes received and not yet dispatched, latin1 (one char per byte, as the parser reads them). */
  private pending = '';

  /** The parser took `text` in command mode: commands follow. */
  received(text: string): void {
    this.pending = this.pending.length + text.length > MAX_PENDING ? '' : this.pending + text;
  }

  /** The parser reads a message body: what it held went into the message, and nothing it takes now is a command. */
  forget(): void {
    this.pending = '';
  }

  /** The parser handed out `line` (without its line end): it is what was held first, else nothing held is trusted. */
  dispatched(line: string): void {
    const end = this.pending.startsWith(line) ? /^\r?\n/.exec(this.pending.slice(line.length)) : null;
    this.pending = end ? this.pending.slice(line.length + end[0].length) : '';
  }

  /** The next whole command line already received, or null when none is (or this cannot tell). */
  next(): string | null {
    const end = this.pending.indexOf('\n');
    return end < 0 ? null : this.pending.slice(0, end).replace(/\r$/, '');
  }
}
