import type { TokenFailureKind } from '../core/token-provider.js';

/** What a provider said, reduced to what passgate needs: never the token, only codes and text. */
export interface ProviderFailure {
  kind: TokenFailureKind;
  /** OAuth error code (`invalid_grant`), or `timeout` / `http_503` / `network`. */
  code: string;
  /** Microsoft's AADSTS code when there is one. */
  aadsts: string | null;
  description: string;
}

// Consent revoked, refresh token expired or revoked, password changed, user disabled: only a new
// `oauth connect` helps (Microsoft Entra error codes reference).
const GRANT_LOST_AADSTS = new Set(['AADSTS70043', 'AADSTS50173', 'AADSTS700082', 'AADSTS70008', 'AADSTS50076', 'AADSTS65001', 'AADSTS50057']);
const CONFIG_ERRORS = new Set(['invalid_client', 'unauthorized_client', 'invalid_scope', 'unsupported_grant_type', 'invalid_request']);

/**
 * Classifies a failed token request from the provider's answer (RFC 6749 §5.2 error codes, HTTP status,
 * AADSTS codes in error_description) or from the transport error.
 */
export function classifyOAuthError(error: unknown): ProviderFailure {
  const e = error as { error?: unknown; status?: unknown; error_description?: unknown; name?: unknown; code?: unknown; cause?: unknown; message?: unknown };
  const description = typeof e.error_description === 'string' ? e.error_description : String(e.message ?? error);
  const aadsts = /AADSTS\d+/.exec(description)?.[0] ?? null;
  if (typeof e.error === 'string') {
    const code = e.error;
    const status = typeof e.status === 'number' ? e.status : 400;
    if (aadsts && GRANT_LOST_AADSTS.has(aadsts)) return { kind: 'grant-lost', code, aadsts, description };
    if (code === 'invalid_grant') return { kind: 'grant-lost', code, aadsts, description };
    if (status >= 500 || code === 'temporarily_unavailable' || code === 'server_error') return { kind: 'temporary', code, aadsts, description };
    if (CONFIG_ERRORS.has(code)) return { kind: 'config', code, aadsts, description };
    return { kind: 'temporary', code, aadsts, description };
  }
  // openid-client reports its own timeout as ClientError code OAUTH_TIMEOUT (cause: a TimeoutError).
  const causeName = (e.cause as { name?: unknown } | undefined)?.name;
  if (e.code === 'OAUTH_TIMEOUT' || e.name === 'TimeoutError' || e.name === 'AbortError' || causeName === 'TimeoutError') {
    return { kind: 'temporary', code: 'timeout', aadsts, description: 'the provider did not answer in time' };
  }
  // openid-client raises a non-OAuth response (a 5xx HTML page, a proxy error) as a ResponseBodyError-less
  // OperationProcessingError carrying the Response in `cause`.
  const response = e.cause as { status?: unknown } | undefined;
  if (response && typeof response.status === 'number') {
    const status = response.status;
    return { kind: status >= 500 || status === 429 ? 'temporary' : 'config', code: `http_${status}`, aadsts, description };
  }
  return { kind: 'temporary', code: 'network', aadsts, description };
}
