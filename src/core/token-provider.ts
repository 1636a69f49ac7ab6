import { GatewayError } from './gateway-error.js';

export interface AccessToken {
  token: string;
  /** Epoch ms when the provider says it expires. */
  expiresAt: number;
  /**
   * True when served from a cache (this process's memory or the shared store) rather than just issued by the
   * provider. Only such a token can be stale in a way its expiry does not show (revoked early at the provider,
   * permissions changed), so only its refusal upstream is worth one retry with a fresh token.
   */
  cached?: boolean;
}

/**
 * The audience (resource) of Exchange Online's IMAP, POP and SMTP AUTH: app-only tokens are requested with scope
 * `https://outlook.office365.com/.default` (Microsoft Learn, "Authenticate an IMAP, POP or SMTP connection using
 * OAuth"). The default audience of the token provider; Graph's is `https://graph.microsoft.com/.default`.
 */
export const EXCHANGE_ONLINE_AUDIENCE = 'https://outlook.office365.com/.default';

/** The audience of Microsoft Graph (the Graph transport's sendMail: Mail.Send; docs/graph.md). */
export const GRAPH_AUDIENCE = 'https://graph.microsoft.com/.default';

/**
 * Why an access token was dropped before its expiry: the upstream named before `-refused` (`smtp`, `imap`, …)
 * refused it at login. A metric label, so upstreams name themselves with a short constant.
 */
export type TokenInvalidationReason = `${string}-refused`;

/**
 * Why a token could not be had:
 *  - config: the provider refuses the application (invalid_client, unauthorized_client): an operator must fix it;
 *  - grant-lost: the mailbox's consent or refresh token is gone (invalid_grant, AADSTS70043, ...): run
 *    `passgate oauth connect` for it;
 *  - temporary: timeouts, 5xx, backoff in force: retry later.
 */
export type TokenFailureKind = 'config' | 'grant-lost' | 'temporary';

export class TokenError extends GatewayError {
  readonly kind: TokenFailureKind;
  readonly key: string;

  constructor(kind: TokenFailureKind, key: string, message: string, options?: { cause?: unknown }) {
    super('PG_TOKEN_UNAVAILABLE', message, options);
    this.name = 'TokenError';
    this.kind = kind;
    this.key = key;
  }
}

export type TokenStatusState = 'ok' | 'needs-connect' | 'failing' | 'unknown';

export interface TokenStatus {
  /**
   * `app` (one token for every mailbox) or `mailbox:<address>`, for the default audience; another audience's key
   * ends in `|<audience>`.
   */
  key: string;
  /** The audience (resource) the token is for. */
  audience: string;
  mode: 'app' | 'delegated';
  mailbox: string | null;
  state: TokenStatusState;
  /** Expiry of the cached access token, if one is held. */
  accessExpiresAt: number | null;
  lastSuccessAt: number | null;
  failingSince: number | null;
  lastError: string | null;
}

/**
 * Port: an access token for a mailbox's upstream login, obtained, cached and refreshed by passgate. Tokens are
 * per audience (the resource they are for: EXCHANGE_ONLINE_AUDIENCE when not given), and so are the cache, the
 * stored token state and the refresh lock.
 */
export interface TokenProvider {
  /** Throws TokenError; never returns a token that expires within the configured margin. */
  getAccessToken(mailbox: string, audience?: string): Promise<AccessToken>;
  /**
   * The upstream refused `token` for `mailbox` (and `audience`): forget it, here and in the shared store, if it is still the cached
   * one (compared by value, so a token a concurrent refresh just stored is kept), so that the next getAccessToken
   * asks the provider. Returns true when the caller may retry once with getAccessToken (dropped, or already
   * replaced); false when this key was already forced to refresh within the last few seconds (the refusal is the
   * verdict: a permanently refusing upstream must not turn every client login into a token request).
   */
  invalidateAccessToken(mailbox: string, token: string, reason: TokenInvalidationReason, audience?: string): Promise<boolean>;
  status(): Promise<TokenStatus[]>;
  close(): Promise<void>;
}
