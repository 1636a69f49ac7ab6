import { GatewayError } from './gateway-error.js';

export interface AccessToken {
  token: string;
  /** Epoch ms when the provider says it expires. */
  expiresAt: number;
}

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
  /** `app` (one token for every mailbox) or `mailbox:<address>`. */
  key: string;
  mode: 'app' | 'delegated';
  mailbox: string | null;
  state: TokenStatusState;
  /** Expiry of the cached access token, if one is held. */
  accessExpiresAt: number | null;
  lastSuccessAt: number | null;
  failingSince: number | null;
  lastError: string | null;
}

/** Port: an access token for a mailbox's upstream login, obtained, cached and refreshed by passgate. */
export interface TokenProvider {
  /** Throws TokenError; never returns a token that expires within the configured margin. */
  getAccessToken(mailbox: string, signal?: AbortSignal): Promise<AccessToken>;
  status(): Promise<TokenStatus[]>;
  close(): Promise<void>;
}
