import { readFileSync } from 'node:fs';
import type { SmtpUpstreamConfig } from '../../config/config-schema.js';
import { GatewayError } from '../../core/gateway-error.js';
import type { AccessToken, TokenProvider } from '../../core/token-provider.js';
import type { UpstreamMetrics } from '../../core/upstream-metrics.js';
import { replyText, UpstreamSmtpError, UpstreamSmtpSession, type SmtpReply } from './upstream-smtp-session.js';

/** The upstream refused the mailbox's token (e.g. `535 5.7.3`, or `535 5.7.139` SMTP AUTH disabled). */
export class UpstreamAuthError extends Error {
  constructor(readonly reply: SmtpReply) {
    super(`upstream refused the login: ${reply.code} ${replyText(reply)}`);
    this.name = 'UpstreamAuthError';
  }
}

/**
 * Opens an authenticated upstream session for a mailbox: connect (TLS), then AUTH XOAUTH2 with a token from the
 * token provider. Throws TokenError (no token), UpstreamSmtpError (unreachable, or a temporary 4xx to AUTH) or
 * UpstreamAuthError (refused).
 */
export class UpstreamConnector {
  private readonly ca: string | undefined;

  constructor(
    private readonly config: SmtpUpstreamConfig,
    private readonly tokens: TokenProvider,
    private readonly clientName: string,
    private readonly metrics: UpstreamMetrics,
  ) {
    try {
      this.ca = config.ca_file === null ? undefined : readFileSync(config.ca_file, 'utf8');
    } catch (cause) {
      throw new GatewayError('PG_CONFIG_INVALID', `smtp.upstream.ca_file: cannot read ${config.ca_file}: ${(cause as Error).message}`, { cause });
    }
  }

  /**
   * A refusal of a cached token may only mean the token went stale before its expiry (revoked early, permissions
   * changed): it is dropped and the login tried once more with a fresh one, whose refusal is the verdict. The token
   * provider bounds the forced refreshes per mailbox, so a permanently refusing upstream costs no token per login.
   */
  async open(mailbox: string): Promise<UpstreamSmtpSession> {
    const token = await this.tokens.getAccessToken(mailbox);
    try {
      return await this.login(mailbox, token);
    } catch (error) {
      if (!(error instanceof UpstreamAuthError) || !token.cached) throw error;
      if (!(await this.tokens.invalidateAccessToken(mailbox, token.token, 'smtp-refused'))) throw error;
    }
    return this.login(mailbox, await this.tokens.getAccessToken(mailbox));
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
    try {
      const reply = await session.authenticate(mailbox, accessToken);
      // RFC 4954 §6: a 4xx to AUTH (454 4.7.0 "temporary authentication failure") is the upstream's own trouble,
      // not a verdict on the token: the client gets a temporary reply, never "invalid credentials". (Counted as a
      // failure below, not as a rejection.)
      if (reply.code >= 400 && reply.code < 500) throw new UpstreamSmtpError(`upstream could not check the login: ${reply.code} ${replyText(reply)}`, reply);
      metrics.auth(reply.code === 235 ? 'success' : 'rejected', seconds());
      if (reply.code !== 235) throw new UpstreamAuthError(reply);
      session.authorizedUntil = expiresAt;
      return session;
    } catch (error) {
      if (!(error instanceof UpstreamAuthError)) metrics.auth('failure', seconds());
      session.close();
      throw error;
    }
  }
}
