import { ImapTranscript } from '../helpers/imap-transcript.js';

/**
 * How one IMAP session ended, as the client saw it:
 * - ok: LOGIN, SELECT, FETCH, IDLE and LOGOUT all worked;
 * - temporary: NO [UNAVAILABLE] at login, or the connection ended (a dependency went away mid-session);
 * - failed: an answer no temporary fault justifies: NO [AUTHENTICATIONFAILED] (or any other NO) for the right
 *   password, BAD, or a tagged NO to SELECT/FETCH from a healthy session;
 * - timeout: no answer within the bound (a hang);
 * - upstream-stall: a timeout after login, where passgate's log proves it passed on every byte both ways (the
 *   upstream itself went silent; passgate is a pipe by then). Decided by the runner, not here;
 * - connect-failed: passgate did not accept the connection.
 */
export type ReadResult = 'ok' | 'temporary' | 'failed' | 'timeout' | 'upstream-stall' | 'connect-failed';

export interface ReadOutcome {
  result: ReadResult;
  stage: 'connect' | 'greeting' | 'login' | 'select' | 'fetch' | 'idle' | 'logout';
  detail: string;
  at: number;
  ms: number;
  /** Messages the mailbox held at SELECT. */
  exists: number;
  /** Bytes sent and received after the login's OK (null before login). */
  afterLogin: { sent: number; received: number } | null;
}

/** One reading session through passgate's implicit-TLS IMAP port: LOGIN, SELECT, FETCH the newest, IDLE, LOGOUT. */
export async function readOnce(port: number, account: { user: string; password: string }, idleMs: number, replyTimeoutMs: number): Promise<ReadOutcome> {
  const started = Date.now();
  let exists = 0;
  let afterLogin: ReadOutcome['afterLogin'] = null;
  const done = (result: ReadResult, stage: ReadOutcome['stage'], detail = ''): ReadOutcome => ({
    result,
    stage,
    detail: detail.trim().slice(0, 200),
    at: started,
    ms: Date.now() - started,
    exists,
    afterLogin,
  });
  let t: ImapTranscript;
  try {
    t = await Promise.race([
      ImapTranscript.connect(port, { tls: true }),
      new Promise<never>((_, reject) => setTimeout(() => reject(new Error('connect timeout')), replyTimeoutMs)),
    ]);
  } catch {
    return done('connect-failed', 'connect');
  }
  const send = (line: string) => {
    if (afterLogin) afterLogin.sent += Buffer.byteLength(line) + 2;
    t.send(line);
  };
  const wait = async (stage: ReadOutcome['stage'], pattern: RegExp): Promise<{ text: string } | ReadOutcome> => {
    try {
      const text = await t.until(pattern, replyTimeoutMs);
      if (afterLogin) afterLogin.received += Buffer.byteLength(text);
      return { text };
    } catch (error) {
      const message = (error as Error).message;
      const unread = /got ("(?:[^"\\]|\\.)*")$/s.exec(message)?.[1];
      if (afterLogin && unread) afterLogin.received += Buffer.byteLength(JSON.parse(unread) as string);
      // A connection that ends while a dependency is away is a temporary error (a client reconnects).
      return /timed out/.test(message) ? done('timeout', stage, 'no answer within the bound') : done('temporary', stage, 'connection closed');
    }
  };
  const tagged = (tag: string) => new RegExp(`^(?:${tag} (?:OK|NO|BAD)|\\* BYE)\\b`);
  try {
    let r = await wait('greeting', /^\* (OK|BYE)\b/);
    if ('result' in r) return r;
    if (/^\* BYE/m.test(r.text)) return done('temporary', 'greeting', r.text);

    t.send(`a LOGIN "${account.user}" "${account.password}"`);
    r = await wait('login', tagged('a'));
    if ('result' in r) return r;
    const login = lastLine(r.text);
    if (/^\* BYE/.test(login)) return done('temporary', 'login', login);
    if (/^a NO \[UNAVAILABLE\]/.test(login)) return done('temporary', 'login', login);
    if (!/^a OK/.test(login)) return done('failed', 'login', login);
    afterLogin = { sent: 0, received: 0 };

    // After login passgate is a pipe to Dovecot: a dropped connection is the upstream going away.
    for (const [stage, tag, command] of [
      ['select', 'b', 'SELECT INBOX'],
      ['fetch', 'c', null],
    ] as const) {
      const line = command ?? (exists > 0 ? `FETCH ${Math.max(1, exists - 4)}:${exists} (UID FLAGS BODY.PEEK[HEADER.FIELDS (X-CHAOS-ID)])` : 'NOOP');
      send(`${tag} ${line}`);
      r = await wait(stage, tagged(tag));
      if ('result' in r) return r;
      const last = lastLine(r.text);
      if (/^\* BYE/.test(last)) return done('temporary', stage, last);
      if (!new RegExp(`^${tag} OK`).test(last)) return done('failed', stage, last);
      if (stage === 'select') exists = Number(/^\* (\d+) EXISTS/m.exec(r.text)?.[1] ?? 0);
    }

    send('d IDLE');
    r = await wait('idle', /^(\+|d (OK|NO|BAD)|\* BYE)/);
    if ('result' in r) return r;
    if (!/^\+/m.test(lastLine(r.text))) return done(/BYE/.test(r.text) ? 'temporary' : 'failed', 'idle', lastLine(r.text));
    await new Promise((resolve) => setTimeout(resolve, idleMs));
    send('DONE');
    r = await wait('idle', tagged('d'));
    if ('result' in r) return r;
    if (!/^d OK/.test(lastLine(r.text))) return done(/BYE/.test(r.text) ? 'temporary' : 'failed', 'idle', lastLine(r.text));

    send('e LOGOUT');
    r = await wait('logout', tagged('e'));
    if ('result' in r) {
      // The BYE came and the connection closed before the tagged OK was read: still a clean logout.
      return r.result === 'temporary' ? done('ok', 'logout') : r;
    }
    return done('ok', 'logout');
  } finally {
    setTimeout(() => t.close(), 200).unref();
  }
}

function lastLine(text: string): string {
  const lines = text.split('\r\n').filter((l) => l.length > 0);
  return lines[lines.length - 1] ?? '';
}
