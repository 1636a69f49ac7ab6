import { SmtpTranscript, plain } from '../helpers/smtp-transcript.js';

/**
 * How one message attempt ended, as the client saw it:
 * - accepted: 250 after the final "." (the upstream must have it exactly once);
 * - temporary: a 4xx at some stage (the upstream must not have it);
 * - permanent: a 5xx (no temporary fault justifies one: an invariant breaks);
 * - closed: the connection ended without a reply (allowed while a dependency is down, but not after the final
 *   "." unless the message was not delivered);
 * - timeout: no reply within the bound (a hang: an invariant breaks);
 * - connect-failed: passgate did not accept the connection (it must always: an invariant breaks).
 */
export type SendResult = 'accepted' | 'temporary' | 'permanent' | 'closed' | 'timeout' | 'connect-failed';

export interface SendOutcome {
  id: string;
  result: SendResult;
  /** The command whose reply decided it. */
  stage: 'connect' | 'greeting' | 'ehlo' | 'auth' | 'mail' | 'rcpt' | 'data' | 'dot';
  /** The reply (code and text), when there was one. */
  reply: string;
  at: number;
  ms: number;
}

const REPLY = /^\d{3}[ -]/;

/** The code of the last line of a reply. */
function codeOf(reply: string): number {
  const lines = reply.trimEnd().split('\r\n');
  return Number(lines[lines.length - 1]!.slice(0, 3));
}

/** The message for one attempt: a unique id in Message-ID and X-Chaos-Id, so the upstream's copy can be counted. */
export function chaosMessage(id: string, from: string): string {
  return [
    `From: <${from}>`,
    'To: <recipient@example.net>',
    `Subject: chaos ${id}`,
    `Message-ID: <${id}@chaos.passgate.test>`,
    `X-Chaos-Id: ${id}`,
    '',
    ...Array.from({ length: 20 }, (_, i) => `line ${i} of ${id}: the quick brown fox jumps over the lazy dog`),
    '.leading dot, stuffed on the wire',
    '',
  ].join('\r\n');
}

/** The X-Chaos-Id header of a delivered message (the header only, never the body), or null. */
export function chaosIdOf(raw: Buffer): string | null {
  const text = raw.subarray(0, 8192).toString('latin1');
  const end = text.indexOf('\r\n\r\n');
  const head = end >= 0 ? text.slice(0, end + 2) : text;
  return /^X-Chaos-Id: (\S+)\r?$/m.exec(head)?.[1] ?? null;
}

/**
 * Sends one message through passgate's implicit-TLS submission port the way a scanner does (connect, EHLO, AUTH
 * PLAIN, MAIL, RCPT, DATA, QUIT), and records how it ended. Each reply is awaited at most `replyTimeoutMs`.
 */
export async function sendOne(port: number, account: { user: string; password: string }, id: string, replyTimeoutMs: number): Promise<SendOutcome> {
  const started = Date.now();
  const done = (result: SendResult, stage: SendOutcome['stage'], reply = ''): SendOutcome => ({
    id,
    result,
    stage,
    reply: reply.trim().slice(0, 200),
    at: started,
    ms: Date.now() - started,
  });
  let t: SmtpTranscript;
  try {
    t = await Promise.race([
      SmtpTranscript.connect(port, { tls: true }),
      new Promise<never>((_, reject) => setTimeout(() => reject(new Error('connect timeout')), replyTimeoutMs)),
    ]);
  } catch {
    return done('connect-failed', 'connect');
  }
  try {
    const step = async (stage: SendOutcome['stage'], line: string | null, want: number): Promise<SendOutcome | null> => {
      if (line !== null) t.send(line);
      let reply: string;
      try {
        reply = await t.expect(REPLY, replyTimeoutMs);
      } catch (error) {
        return done(/timed out/.test((error as Error).message) ? 'timeout' : 'closed', stage);
      }
      const code = codeOf(reply);
      if (code === want) return null;
      return done(code >= 500 ? 'permanent' : code >= 400 ? 'temporary' : 'permanent', stage, reply);
    };
    const failed =
      (await step('greeting', null, 220)) ??
      (await step('ehlo', 'EHLO chaos-client.test', 250)) ??
      (await step('auth', `AUTH PLAIN ${plain(account.user, account.password)}`, 235)) ??
      (await step('mail', `MAIL FROM:<${account.user}>`, 250)) ??
      (await step('rcpt', 'RCPT TO:<recipient@example.net>', 250)) ??
      (await step('data', 'DATA', 354));
    if (failed) return failed;
    // RFC 5321 §4.5.2: a line starting with "." goes out with one more.
    t.write(chaosMessage(id, account.user).replace(/^\./gm, '..'));
    const final = await step('dot', '.', 250);
    if (final) return final;
    t.send('QUIT');
    return done('accepted', 'dot', '250');
  } finally {
    setTimeout(() => t.close(), 200).unref();
  }
}
