import { readFileSync } from 'node:fs';
import type { SmtpUpstreamConfig } from '../../config/config-schema.js';
import { GatewayError } from '../../core/gateway-error.js';
import { replyText, UpstreamError } from '../../core/ports/upstream-failure.js';
import { EXCHANGE_ONLINE_AUDIENCE, type AccessToken, type TokenProvider } from '../../core/token-provider.js';
import type { UpstreamMetrics } from '../../core/upstream-metrics.js';
import { loginWithFreshToken } from '../fresh-token-login.js';
import { UpstreamSmtpSession } from './upstream-smtp-session.js';

/**
 * Opens an authenticated upstream session for a mailbox: connect (TLS), then AUTH XOAUTH2 with a token from the
 * token provider (loginWithFreshToken: one retry with a fresh token when a cached one is refused). Throws
 * UpstreamError: token-unavailable, unreachable, login-deferred (a 4xx to AUTH) or login-refused.
 */
export class UpstreamConnector {
  private readonly ca: string | undefined;

  constructor(
    private readonly config: SmtpUpstreamConfig,
    private readonly tokens: TokenProvider,
    private readonly clientName: string,
    private readonly metrics: UpstreamMetrics,
    /** The token's audience (resource); Exchange Online's SMTP AUTH by default. */
    private readonly audience: string = EXCHANGE_ONLINE_AUDIENCE,
  ) {
    try {
      this.ca = config.ca_file === null ? undefined : readFileSync(config.ca_file, 'utf8');
    } catch (cause) {
      throw new GatewayError('PG_CONFIG_INVALID', `smtp.upstream.ca_file: cannot read ${config.ca_file}: ${(cause as Error).message}`, { cause });
    }
  }

  open(mailbox: string): Promise<UpstreamSmtpSession> {
    return loginWithFreshToken({ tokens: this.tokens, mailbox, audience: this.audience, refusal: 'smtp-refused' }, (token) => this.login(mailbox, token));
  }

  private async login(mailbox: string, { token: accessToken, expiresAt }: AccessToken): Promise<UpstreamSmtpSession> {
    const { metrics } = this;
    let started = performance.now();
    const seconds = () => (performance.now() - started) / 1000;
    const session = await UpstreamSmtpSession.open({
      host: this.config.host,
      port: this.config.port,
      tls: this.config.tls,
      ca: this.ca,
      servername: this.config.servername ?? this.config.host,
      clientName: this.clientName,
      connectTimeoutMs: this.config.connect_timeout_seconds * 1000,
      commandTimeoutMs: this.config.command_timeout_seconds * 1000,
      dataTimeoutMs: this.config.data_timeout_seconds * 1000,
      observeCommand: metrics.command,
    }).catch((error: unknown) => {
      metrics.connect('failure', seconds());
      throw error;
    });
    metrics.connect('success', seconds());
    started = performance.now();
    let refused = false;
    try {
      const reply = await session.authenticate(mailbox, accessToken);
      // RFC 4954 §6: a 4xx to AUTH (454 4.7.0 "temporary authentication failure") is the upstream's own trouble,
      // not a verdict on the token: the client gets a temporary reply, never "invalid credentials". (Counted as a
      // failure below, not as a rejection.)
      if (reply.code >= 400 && reply.code < 500) throw new UpstreamError('login-deferred', `upstream could not check the login: ${reply.code} ${replyText(reply)}`, { reply });
      metrics.auth(reply.code === 235 ? 'success' : 'rejected', seconds());
      // e.g. `535 5.7.3 Authentication unsuccessful`, or `535 5.7.139` (SMTP AUTH disabled for the mailbox).
      refused = reply.code !== 235;
      if (refused) throw new UpstreamError('login-refused', `upstream refused the login: ${reply.code} ${replyText(reply)}`, { reply });
      session.authorizedUntil = expiresAt;
      return session;
    } catch (error) {
      if (!refused) metrics.auth('failure', seconds());
      session.close();
      throw error;
    }
  }
}
