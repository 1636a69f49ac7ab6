import type { TLSSocket } from 'node:tls';
import type { Pop3Config } from '../config/config-schema.js';
import { replyText, UpstreamError } from '../core/ports/upstream-failure.js';
import type { AccessToken } from '../core/token-provider.js';
import { loginUpstreamPop3 } from '../upstream/pop3/pop3-mailbox-upstream.js';
import { fail, pass, skip, type CheckResult } from './doctor-report.js';
import { explainedFailure as explained } from './microsoft-failures.js';
import { mailboxUpstreamTarget } from '../upstream/mailbox-upstream-target.js';

const NAME = 'pop3 login';

/** Sends one command on a logged-in session and resolves with its status line (`+OK ...` or `-ERR ...`). */
function status(socket: TLSSocket, leftover: Buffer, command: string, timeoutMs: number): Promise<string> {
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
      const end = buffer.indexOf('\n');
      if (end >= 0) return done(null, buffer.slice(0, end).replace(/\r$/, ''));
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
    socket.write(`${command}\r\n`);
    scan();
  });
}

/**
 * A real login upstream, as the POP3 gateway does it (loginUpstreamPop3: TLS or STLS, AUTH XOAUTH2), then STAT
 * (the first command after login is where Exchange says an app token has no mailbox access), then QUIT (which,
 * after STAT only, deletes nothing: RFC 1939 §6).
 */
export async function checkPop3Login(config: Pop3Config, mailbox: string, token: AccessToken, clientId: string | null): Promise<CheckResult> {
  if (!config.enabled) return skip(NAME, 'pop3.enabled is false');
  const u = config.upstream;
  const upstream = `${u.host}:${u.port}`;
  let target;
  try {
    target = mailboxUpstreamTarget(u, 'pop3.upstream');
  } catch (error) {
    return fail(NAME, (error as Error).message);
  }
  let session;
  try {
    session = await loginUpstreamPop3(target, mailbox, token.token);
  } catch (error) {
    if (error instanceof UpstreamError && error.reply) {
      const responseText = replyText(error.reply);
      return explained(NAME, 'pop3', `${upstream} refused the login as ${mailbox}: ${responseText}`, responseText, 'Read the reply text; the mailbox may not use POP3 with this token.', { mailbox, clientId });
    }
    const message = (error as Error).message;
    return explained(NAME, 'connect', message, message, `Check pop3.upstream.host, port and tls (${upstream}).`);
  }
  const { socket } = session;
  socket.on('error', () => {});
  try {
    const stat = await status(socket, session.leftover, 'STAT', target.timeoutMs);
    if (!/^\+OK\b/.test(stat)) {
      const detail = `${upstream} accepted the login as ${mailbox}, but STAT answered: ${stat.slice(0, 200)}`;
      return explained(NAME, 'pop3', detail, stat, 'The login worked but the mailbox could not be opened: check that the mailbox exists.', { mailbox, clientId });
    }
    await status(socket, Buffer.alloc(0), 'QUIT', 2000).catch(() => undefined);
    return pass(NAME, `${upstream} accepted AUTH XOAUTH2 as ${mailbox} and answered STAT (${u.tls === 'implicit' ? 'TLS' : 'STLS'})`);
  } catch (error) {
    return fail(NAME, `${upstream} accepted the login as ${mailbox}, then: ${(error as Error).message}`);
  } finally {
    socket.destroy();
  }
}
