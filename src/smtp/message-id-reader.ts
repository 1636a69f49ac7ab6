/** Header bytes read at most: a Message-ID further down than this is not looked for. */
const MAX_HEADER_BYTES = 64 * 1024;

/**
 * Finds the Message-ID header of a message as it streams past (RFC 5322 §3.6.4), without holding the message:
 * only the header section is kept, up to 64 KiB, and nothing more is read once it ended.
 */
export class MessageIdReader {
  private header = '';
  private done = false;

  /** Feeds the next chunk of the message, as the client sent it. */
  push(chunk: Buffer): void {
    if (this.done) return;
    this.header += chunk.toString('latin1');
    const end = this.header.search(/\r?\n\r?\n/);
    if (end >= 0) {
      this.header = this.header.slice(0, end);
      this.done = true;
    } else if (this.header.length >= MAX_HEADER_BYTES) {
      this.header = this.header.slice(0, MAX_HEADER_BYTES);
      this.done = true;
    }
  }

  get messageId(): string | null {
    return parseMessageId(this.header);
  }
}

/** The Message-ID of a header section (folded lines unfolded), or null when it has none. */
export function parseMessageId(header: string): string | null {
  const unfolded = header.replace(/\r?\n[ \t]+/g, ' ');
  const line = /^message-id[ \t]*:[ \t]*(.*)$/im.exec(unfolded)?.[1]?.trim();
  if (!line) return null;
  return (/<[^<>\s]+>/.exec(line)?.[0] ?? line).slice(0, 250);
}

/**
 * The upstream's own id for an accepted message, from its 250 reply when it names one: Exchange Online answers
 * `250 2.0.0 OK <internet message id> [Hostname=...]`, Postfix `250 2.0.0 Ok: queued as 4Fp1xX`, Sendmail
 * `250 2.0.0 x4TJ1Lc1 Message accepted for delivery`, and many say `queued as` or `id=`. The Graph transport's 250
 * names Graph's `request-id` (issue 20), what Microsoft support asks for.
 */
export function parseQueueId(replyText: string): string | null {
  const queued = /queued as ([^\s,;]+)/i.exec(replyText) ?? /\bid=([^\s,;]+)/i.exec(replyText) ?? /\brequest-id ([0-9a-f-]{8,})/i.exec(replyText);
  if (queued) return queued[1]!.slice(0, 250);
  const bracketed = /<[^<>\s]+>/.exec(replyText);
  if (bracketed) return bracketed[0].slice(0, 250);
  const sendmail = /^\d\.\d\.\d+ (\S+) Message accepted/i.exec(replyText);
  return sendmail ? sendmail[1]! : null;
}
