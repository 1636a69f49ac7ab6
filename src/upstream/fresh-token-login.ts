import { upstreamFailure, UpstreamError } from '../core/ports/upstream-failure.js';
import type { AccessToken, TokenInvalidationReason, TokenProvider } from '../core/token-provider.js';

/** What an upstream login needs from the token provider: whose token, for which audience, who asks. */
export interface TokenRequest {
  tokens: TokenProvider;
  mailbox: string;
  audience: string;
  /** How a refusal is counted (`passgate_token_invalidations_total{reason}`): `smtp-refused`, `imap-refused`, … */
  refusal: TokenInvalidationReason;
}

/**
 * Logs in with a token from the token provider, for every upstream alike. A refusal of a cached token may only
 * mean the token went stale before its expiry (revoked early, permissions changed): it is dropped and the login
 * tried once more with a fresh one, whose refusal is the verdict. The provider bounds the forced refreshes per
 * key, so a permanently refusing upstream costs no token request per login. Throws UpstreamError only (a token
 * that cannot be had is `token-unavailable`).
 */
export async function loginWithFreshToken<T>(request: TokenRequest, login: (token: AccessToken) => Promise<T>): Promise<T> {
  const { tokens, mailbox, audience, refusal } = request;
  const token = await accessToken(request);
  try {
    return await login(token);
  } catch (error) {
    if (!(error instanceof UpstreamError && error.kind === 'login-refused') || !token.cached) throw error;
    if (!(await tokens.invalidateAccessToken(mailbox, token.token, refusal, audience))) throw error;
  }
  return login(await accessToken(request));
}

async function accessToken({ tokens, mailbox, audience }: TokenRequest): Promise<AccessToken> {
  try {
    return await tokens.getAccessToken(mailbox, audience);
  } catch (error) {
    throw upstreamFailure(error);
  }
}
