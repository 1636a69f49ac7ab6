import { once } from 'node:events';
import { connect as netConnect, type Socket } from 'node:net';
import { connect as tlsConnect, type TLSSocket } from 'node:tls';
import type { Pop3UpstreamConfig } from '../../config/config-schema.js';
import type { MailboxSession, MailboxUpstream } from '../../core/ports/mailbox-upstream.js';
import { UpstreamError } from '../../core/ports/upstream-failure.js';
import { EXCHANGE_ONLINE_AUDIENCE, type TokenProvider } from '../../core/token-provider.js';
import type { UpstreamMetrics } from '../../core/upstream-metrics.js';
import { clientSecureContext } from '../../tls/client-secure-context.js';
import { serverIdentity } from '../../tls/server-identity.js';
import { loginWithFreshToken } from '../fresh-token-login.js';
import { ResponseLineReader } from '../response-line-reader.js';
import { encodeXoauth2 } from '../xoauth2.js';
import { mailboxUpstreamTarget, type MailboxUpstreamTarget } from '../mailbox-upstream-target.js';

/** Where the POP3 upstream is (upstream/mailbox-upstream-target.ts, shared with the other mailbox upstream). */
export type UpstreamPop3Options = MailboxUpstreamTarget;

export interface UpstreamPop3Session extends MailboxSession {
  socket: TLSSocket;
}

/** The upstream could not be reached, spoke something else than POP3, or did not answer in time. */
const unreachable = (message: string) => new UpstreamError('unreachable', message);

/** A POP3 reply in the failure vocabulary's shape: POP3 has no reply codes (0), the text is the whole reply. */
const pop3Reply = (text: string) => ({ code: 0, enhanced: null, lines: [text] });

/** RFC 2449 §4 / RFC 5034 §4: a command line, CRLF included, is at most 255 octets. */
const MAX_COMMAND_OCTETS = 255;

/**
 * How an upstream `-ERR` to AUTH reads in the failure vocabulary, by its RFC 3206 / RFC 2449 response code:
 * [IN-USE] (another POP3 session holds the mailbox's lock) is `busy`; [SYS/TEMP] and [LOGIN-DELAY] mean "later"
 * (`login-deferred`); anything else ([AUTH], [SYS/PERM], none: Exchange's `-ERR Authentication failure: unknown
 * user name or bad password.`) is a refusal of the token.
 */
function refusal(line: string): UpstreamError {
  const text = line.slice(0, 300);
  const reply = { reply: pop3Reply(text) };
  if (/^-ERR \[IN-USE\]/i.test(line)) return new UpstreamError('busy', `upstream mailbox in use: ${text}`, reply);
  if (/^-ERR \[(SYS\/TEMP|LOGIN-DELAY)\]/i.test(line)) return new UpstreamError('login-deferred', `upstream could not log in now: ${text}`, reply);
  return new UpstreamError('login-refused', `upstream refused the login: ${text}`, reply);
}

/**
 * Connects to the upstream POP3 server and logs in as `mailbox` with SASL `AUTH XOAUTH2` (RFC 5034; Microsoft
 * Learn, "Authenticate an IMAP, POP or SMTP connection using OAuth"). The initial response rides on the AUTH line
 * only when the line stays within 255 octets (RFC 5034 §4); an access token never does, so in practice the
 * response follows the server's empty `+ ` continuation, the exchange Microsoft documents for POP. A failed
 * XOAUTH2 exchange sends a `+` continuation carrying a JSON error, answered with an empty line before the `-ERR`.
 */
export async function loginUpstreamPop3(
  options: UpstreamPop3Options,
  mailbox: string,
  accessToken: string,
  metrics?: UpstreamMetrics,
): Promise<UpstreamPop3Session> {
  let phase: 'connect' | 'auth' = 'connect';
  let started = performance.now();
  const seconds = () => (performance.now() - started) / 1000;
  const reader = new ResponseLineReader();
  const identity = () => ({ ...serverIdentity(options.servername), secureContext: clientSecureContext(options.ca) });
  let socket: Socket | TLSSocket =
    options.tls === 'implicit' ? tlsConnect({ host: options.host, port: options.port, ...identity() }) : netConnect({ host: options.host, port: options.port });
  socket.setNoDelay(true);
  reader.attach(socket);
  const timer = setTimeout(() => {
    reader.fail(unreachable(`upstream ${options.host}:${options.port} did not complete the login in time`));
    socket.destroy();
  }, options.timeoutMs);
  try {
    const greeting = await reader.line();
    if (!/^\+OK\b/i.test(greeting)) throw unreachable(`unexpected upstream greeting: ${greeting.slice(0, 200)}`);
    if (options.tls === 'starttls') {
      socket.write('STLS\r\n');
      const line = await reader.line();
      if (!/^\+OK\b/i.test(line)) throw unreachable(`upstream refused STLS: ${line.slice(0, 200)}`);
      // RFC 2595 §4: nothing received before the handshake may be read as protected.
      if (reader.buffered > 0) throw unreachable('upstream sent data before the TLS handshake');
      reader.detach();
      const secure = tlsConnect({ socket, ...identity() });
      socket = secure;
      reader.attach(secure);
      await once(secure, 'secureConnect');
    }
    metrics?.connect('success', seconds());
    phase = 'auth';
    started = performance.now();
    const response = encodeXoauth2(mailbox, accessToken);
    const inline = `AUTH XOAUTH2 ${response}\r\n`;
    let pending: string | null = null;
    if (Buffer.byteLength(inline) <= MAX_COMMAND_OCTETS) socket.write(inline);
    else {
      socket.write('AUTH XOAUTH2\r\n');
      pending = response;
    }
    for (;;) {
      const line = await reader.line();
      if (line.startsWith('+OK')) break;
      if (line.startsWith('+')) {
        // The first empty continuation asks for the response; a continuation with text carries the error (an
        // empty line ends the exchange and the -ERR follows).
        const challenge = line.slice(1).trim();
        socket.write(pending !== null && challenge === '' ? `${pending}\r\n` : '\r\n');
        pending = null;
        continue;
      }
      if (line.startsWith('-ERR')) throw refusal(line);
      throw unreachable(`unexpected upstream response: ${line.slice(0, 200)}`);
    }
    metrics?.auth('success', seconds());
    reader.detach();
    socket.removeAllListeners('error');
    return { socket: socket as TLSSocket, capabilities: [], leftover: reader.rest() };
  } catch (error) {
    if (phase === 'connect') metrics?.connect('failure', seconds());
    else if (error instanceof UpstreamError && error.kind === 'login-refused') metrics?.auth('rejected', seconds());
    else metrics?.auth('failure', seconds());
    socket.destroy();
    throw error instanceof UpstreamError ? error : unreachable(`cannot reach upstream ${options.host}:${options.port}: ${(error as Error).message}`);
  } finally {
    clearTimeout(timer);
  }
}

/**
 * The mailbox upstream over POP3: logs in as the mailbox with a token from the token provider (loginWithFreshToken:
 * one retry with a fresh token when a cached one is refused). Throws UpstreamError only.
 */
export class Pop3MailboxUpstream implements MailboxUpstream {
  private readonly options: UpstreamPop3Options;

  constructor(
    config: Pop3UpstreamConfig,
    private readonly tokens: TokenProvider,
    private readonly metrics: UpstreamMetrics,
    /** The token's audience (resource); Exchange Online's by default (POP.AccessAsApp is in its .default). */
    private readonly audience: string = EXCHANGE_ONLINE_AUDIENCE,
  ) {
    this.options = mailboxUpstreamTarget(config, 'pop3.upstream');
  }

  open(mailbox: string): Promise<UpstreamPop3Session> {
    return loginWithFreshToken({ tokens: this.tokens, mailbox, audience: this.audience, refusal: 'pop3-refused' }, (token) =>
      loginUpstreamPop3(this.options, mailbox, token.token, this.metrics),
    );
  }
}
