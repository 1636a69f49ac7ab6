import { once } from 'node:events';
import { connect as netConnect, type Socket } from 'node:net';
import { connect as tlsConnect, type TLSSocket } from 'node:tls';
import type { ImapUpstreamConfig } from '../../config/config-schema.js';
import type { MailboxSession, MailboxUpstream } from '../../core/ports/mailbox-upstream.js';
import { UpstreamError } from '../../core/ports/upstream-failure.js';
import { EXCHANGE_ONLINE_AUDIENCE, type TokenProvider } from '../../core/token-provider.js';
import type { UpstreamMetrics } from '../../core/upstream-metrics.js';
import { loginWithFreshToken } from '../fresh-token-login.js';
import { encodeXoauth2 } from '../xoauth2.js';
import { ResponseLineReader } from '../response-line-reader.js';
import { clientSecureContext } from '../../tls/client-secure-context.js';
import { serverIdentity } from '../../tls/server-identity.js';
import { mailboxUpstreamTarget, type MailboxUpstreamTarget } from '../mailbox-upstream-target.js';

/** Where the IMAP upstream is (upstream/mailbox-upstream-target.ts, shared with the other mailbox upstream). */
export type UpstreamImapOptions = MailboxUpstreamTarget;

export interface UpstreamImapSession extends MailboxSession {
  socket: TLSSocket;
}

/** The upstream could not be reached, spoke something else than IMAP, or did not answer in time. */
const unreachable = (message: string) => new UpstreamError('unreachable', message);

/** An IMAP reply in the failure vocabulary's shape: IMAP has no reply codes (0), the text is the whole reply. */
const imapReply = (text: string) => ({ code: 0, enhanced: null, lines: [text] });

function capabilityList(text: string): string[] | null {
  const match = /\[CAPABILITY ([^\]]*)\]/i.exec(text) ?? /^\* CAPABILITY (.*)$/i.exec(text);
  return match ? match[1]!.trim().split(/\s+/) : null;
}

/**
 * Connects to the upstream IMAP server and logs in as `mailbox` with `AUTHENTICATE XOAUTH2` and the initial
 * response (RFC 4959 SASL-IR; Microsoft Learn, "Authenticate an IMAP, POP or SMTP connection using OAuth").
 * A failed XOAUTH2 exchange sends a `+` continuation carrying a JSON error, which must be answered with an
 * empty line before the tagged NO arrives (Google's XOAUTH2 protocol).
 */
export async function loginUpstreamImap(
  options: UpstreamImapOptions,
  mailbox: string,
  accessToken: string,
  metrics?: UpstreamMetrics,
): Promise<UpstreamImapSession> {
  let phase: 'connect' | 'auth' | 'capabilities' = 'connect';
  let started = performance.now();
  const seconds = () => (performance.now() - started) / 1000;
  const reader = new ResponseLineReader();
  let socket: Socket | TLSSocket =
    options.tls === 'implicit'
      ? tlsConnect({ host: options.host, port: options.port, ...serverIdentity(options.servername), secureContext: clientSecureContext(options.ca) })
      : netConnect({ host: options.host, port: options.port });
  socket.setNoDelay(true);
  reader.attach(socket);
  const timer = setTimeout(() => {
    reader.fail(unreachable(`upstream ${options.host}:${options.port} did not complete the login in time`));
    socket.destroy();
  }, options.timeoutMs);
  try {
    const greeting = await reader.line();
    if (!/^\* OK\b/i.test(greeting)) throw unreachable(`unexpected upstream greeting: ${greeting.slice(0, 200)}`);
    if (options.tls === 'starttls') {
      socket.write('P0 STARTTLS\r\n');
      let line: string;
      while ((line = await reader.line()).startsWith('*'));
      if (!/^P0 OK\b/i.test(line)) throw unreachable(`upstream refused STARTTLS: ${line.slice(0, 200)}`);
      // RFC 3501 §6.2.1 / RFC 2595 §3.1: nothing received before the handshake may be read as protected.
      if (reader.buffered > 0) throw unreachable('upstream sent data before the TLS handshake');
      reader.detach();
      const secure = tlsConnect({ socket, ...serverIdentity(options.servername), secureContext: clientSecureContext(options.ca) });
      socket = secure;
      reader.attach(secure);
      await once(secure, 'secureConnect');
    }
    metrics?.connect('success', seconds());
    phase = 'auth';
    started = performance.now();
    socket.write(`P1 AUTHENTICATE XOAUTH2 ${encodeXoauth2(mailbox, accessToken)}\r\n`);
    let capabilities: string[] | null = null;
    for (;;) {
      const line = await reader.line();
      if (line.startsWith('+')) {
        socket.write('\r\n'); // the challenge carries the error; an empty response ends the exchange
        continue;
      }
      if (line.startsWith('* ')) {
        capabilities = capabilityList(line) ?? capabilities;
        continue;
      }
      if (/^P1 OK\b/i.test(line)) {
        capabilities = capabilityList(line) ?? capabilities;
        metrics?.auth('success', seconds());
        phase = 'capabilities';
        break;
      }
      // RFC 5530 §3: [UNAVAILABLE] is a temporary failure of a subsystem the server needs (Dovecot answers it when
      // its token check cannot reach the provider): the client must hear "try again", not "wrong password".
      if (/^P1 NO \[UNAVAILABLE\]/i.test(line)) {
        throw new UpstreamError('login-deferred', `upstream could not check the login: ${line.slice(3, 300)}`, { reply: imapReply(line.slice(3, 300)) });
      }
      // `NO AUTHENTICATE failed.` on Exchange Online.
      if (/^P1 (NO|BAD)\b/i.test(line)) throw new UpstreamError('login-refused', `upstream refused the login: ${line.slice(3, 300)}`, { reply: imapReply(line.slice(3, 300)) });
      throw unreachable(`unexpected upstream response: ${line.slice(0, 200)}`);
    }
    if (!capabilities) {
      socket.write('P2 CAPABILITY\r\n');
      for (;;) {
        const line = await reader.line();
        if (line.startsWith('* ')) capabilities = capabilityList(line) ?? capabilities;
        else if (/^P2 /i.test(line)) break;
      }
    }
    reader.detach();
    socket.removeAllListeners('error');
    return { socket: socket as TLSSocket, capabilities: capabilities ?? ['IMAP4rev1'], leftover: reader.rest() };
  } catch (error) {
    if (phase === 'connect') metrics?.connect('failure', seconds());
    else if (error instanceof UpstreamError && error.kind === 'login-refused') metrics?.auth('rejected', seconds());
    else if (phase === 'auth') metrics?.auth('failure', seconds());
    socket.destroy();
    // Anything that broke before the login completed: the upstream is unreachable (the message says how).
    throw error instanceof UpstreamError ? error : unreachable(`cannot reach upstream ${options.host}:${options.port}: ${(error as Error).message}`);
  } finally {
    clearTimeout(timer);
  }
}

/**
 * The mailbox upstream over IMAP: logs in as the mailbox with a token from the token provider (loginWithFreshToken:
 * one retry with a fresh token when a cached one is refused). Throws UpstreamError only.
 */
export class ImapMailboxUpstream implements MailboxUpstream {
  private readonly options: UpstreamImapOptions;

  constructor(
    config: ImapUpstreamConfig,
    private readonly tokens: TokenProvider,
    private readonly metrics: UpstreamMetrics,
    /** The token's audience (resource); Exchange Online's IMAP by default. */
    private readonly audience: string = EXCHANGE_ONLINE_AUDIENCE,
  ) {
    this.options = mailboxUpstreamTarget(config, 'imap.upstream');
  }

  open(mailbox: string): Promise<UpstreamImapSession> {
    return loginWithFreshToken({ tokens: this.tokens, mailbox, audience: this.audience, refusal: 'imap-refused' }, (token) =>
      loginUpstreamImap(this.options, mailbox, token.token, this.metrics),
    );
  }
}
