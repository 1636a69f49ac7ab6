import type { SmtpConfig } from '../config/config-schema.js';
import type { AccessToken, TokenProvider } from '../core/token-provider.js';
import type { UpstreamMetrics } from '../core/upstream-metrics.js';
import { replyText, UpstreamError } from '../core/ports/upstream-failure.js';
import { UpstreamConnector } from '../upstream/smtp/upstream-connector.js';
import { fail, pass, skip, type CheckResult } from './doctor-report.js';
import { explainedFailure as explained } from './microsoft-failures.js';

const NAME = 'smtp login';

/** A token provider that hands out the one token the doctor already obtained. */
function fixedToken(token: AccessToken): TokenProvider {
  return { getAccessToken: () => Promise.resolve(token), invalidateAccessToken: () => Promise.resolve(false), status: () => Promise.resolve([]), close: () => Promise.resolve() };
}

/** The doctor's one login is not a gateway's traffic: it is not counted. */
const UNMEASURED: UpstreamMetrics = { connect() {}, auth() {}, command() {} };

/**
 * A real login upstream, as the SMTP gateway does it (UpstreamConnector: connect, STARTTLS or TLS, EHLO,
 * AUTH XOAUTH2), then QUIT. Nothing is sent.
 */
export async function checkSmtpLogin(config: SmtpConfig, mailbox: string, token: AccessToken, clientName: string, clientId: string | null): Promise<CheckResult> {
  if (!config.enabled) return skip(NAME, 'smtp.enabled is false');
  const upstream = `${config.upstream.host}:${config.upstream.port}`;
  let connector: UpstreamConnector;
  try {
    connector = new UpstreamConnector(config.upstream, fixedToken(token), clientName, UNMEASURED);
  } catch (error) {
    return fail(NAME, (error as Error).message);
  }
  try {
    const session = await connector.open(mailbox);
    await session.quit();
    return pass(NAME, `${upstream} accepted AUTH XOAUTH2 as ${mailbox} (${config.upstream.tls === 'implicit' ? 'TLS' : 'STARTTLS'})`);
  } catch (error) {
    if (error instanceof UpstreamError && error.kind === 'login-refused' && error.reply) {
      const text = `${error.reply.code} ${replyText(error.reply)}`;
      return explained(NAME, 'smtp', `${upstream} refused the login as ${mailbox}: ${text.slice(0, 300)}`, text, 'Read the reply text; the mailbox may not use SMTP with this token.', { mailbox, clientId });
    }
    if (error instanceof UpstreamError && error.reply && error.reply.code >= 400 && error.reply.code < 500) {
      // RFC 4954 §6: a 4xx to AUTH is the upstream's own temporary trouble, not a verdict on the token or the network.
      const text = `${error.reply.code} ${replyText(error.reply)}`;
      return fail(NAME, `${upstream} could not check the login right now: ${text.slice(0, 300)}`, 'A temporary refusal (4xx) by the upstream: run doctor again in a few minutes; if it persists, check the provider\'s service health.');
    }
    const message = (error as Error).message;
    return explained(NAME, 'connect', message, message, `Check smtp.upstream.host, port and tls (${upstream}).`);
  }
}
