import type { TLSSocket } from 'node:tls';
import type { ImapConfig } from '../config/config-schema.js';
import type { AccessToken } from '../core/token-provider.js';
import { replyText, UpstreamError } from '../core/ports/upstream-failure.js';
import { loginUpstreamImap } from '../upstream/imap/upstream-imap-login.js';
import { fail, pass, skip, type CheckResult } from './doctor-report.js';
import { explainedFailure as explained } from './microsoft-failures.js';
import { mailboxUpstreamTarget } from '../upstream/mailbox-upstream-target.js';

const NAME = 'imap login';

/** Sends one tagged command on a logged-in session and resolves with its tagged reply line (or rejects). */
function tagged(socket: TLSSocket, leftover: Buffer, tag: string, command: string, timeoutMs: number): Promise<string> {
  return new Promise((resolve, reject) => {
    let buffer = leftover.toString('utf8');
    const done = (error: Error | null, line?: string) => {
      clearTimeout(timer);
      socket.off('data', onData);
      socket.off('close', onClose);
      if (error) reject(error);
      else resolve(line!);
    };
    const scan = () => {
      for (const line of buffer.split(/\r?\n/)) if (line.startsWith(`${tag} `)) return done(null, line.slice(tag.length + 1));
      if (buffer.length > 64 * 1024) done(new Error('upstream sent an overlong reply'));
    };
    const onData = (chunk: Buffer) => {
      buffer += chunk.toString('utf8');
      scan();
    };
    const onClose = () => done(new Error('upstream closed the connection'));
    const timer = setTimeout(() => done(new Error('upstream did not answer in time')), timeoutMs);
    socket.on('data', onData);
    socket.on('close', onClose);
    socket.write(`${tag} ${command}\r\n`);
    scan();
  });
}

/**
 * A real login upstream, as the IMAP gateway does it (loginUpstreamImap: TLS or STARTTLS, AUTHENTICATE XOAUTH2),
 * then EXAMINE INBOX (read-only: Exchange accepts an app token without mailbox permission and fails the first
 * command after it, "User is authenticated but not connected"), then LOGOUT.
 */
export async function checkImapLogin(config: ImapConfig, mailbox: string, token: AccessToken, clientId: string | null): Promise<CheckResult> {
  if (!config.enabled) return skip(NAME, 'imap.enabled is false');
  const u = config.upstream;
  const upstream = `${u.host}:${u.port}`;
  let target;
  try {
    target = mailboxUpstreamTarget(u, 'imap.upstream');
  } catch (error) {
    return fail(NAME, (error as Error).message);
  }
  let session;
  try {
    session = await loginUpstreamImap(target, mailbox, token.token);
  } catch (error) {
    if (error instanceof UpstreamError && error.kind === 'login-refused' && error.reply) {
      const responseText = replyText(error.reply);
      return explained(NAME, 'imap', `${upstream} refused the login as ${mailbox}: ${responseText}`, responseText, 'Read the reply text; the mailbox may not use IMAP with this token.', { mailbox, clientId });
    }
    const message = (error as Error).message;
    return explained(NAME, 'connect', message, message, `Check imap.upstream.host, port and tls (${upstream}).`);
  }
  const { socket } = session;
  socket.on('error', () => {});
  try {
    const examined = await tagged(socket, session.leftover, 'D1', 'EXAMINE INBOX', target.timeoutMs);
    if (!/^OK\b/i.test(examined)) {
      const detail = `${upstream} accepted the login as ${mailbox}, but EXAMINE INBOX answered: ${examined.slice(0, 200)}`;
      // Only what the table knows of commands after login; a plain NO here is not a refused token.
      if (/not connected|\[UNAVAILABLE\]/i.test(examined)) return explained(NAME, 'imap', detail, examined, '', { mailbox, clientId });
      return fail(NAME, detail, 'The login worked but the mailbox could not be opened: check that the mailbox exists and has an INBOX.');
    }
    await tagged(socket, Buffer.alloc(0), 'D2', 'LOGOUT', 2000).catch(() => undefined);
    return pass(NAME, `${upstream} accepted AUTHENTICATE XOAUTH2 as ${mailbox} and opened INBOX (${u.tls === 'implicit' ? 'TLS' : 'STARTTLS'})`);
  } catch (error) {
    return fail(NAME, `${upstream} accepted the login as ${mailbox}, then: ${(error as Error).message}`);
  } finally {
    socket.destroy();
  }
}
