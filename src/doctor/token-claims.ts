/** The claims of a JWT access token that say what it is good for. Never the token, never its signature. */
export interface TokenClaims {
  audience: string | null;
  /** App-only permissions (`roles`), e.g. SMTP.SendAsApp. */
  roles: string[];
  /** Delegated permissions (`scp`), e.g. SMTP.Send. */
  scopes: string[];
}

/**
 * Reads the payload of a JWT without verifying it (the upstream verifies; this is for the operator's eyes only).
 * Entra access tokens for Exchange are JWTs; other providers' tokens may be opaque: then null.
 */
export function readTokenClaims(token: string): TokenClaims | null {
  const parts = token.split('.');
  if (parts.length !== 3) return null;
  try {
    const payload = JSON.parse(Buffer.from(parts[1]!, 'base64url').toString('utf8')) as Record<string, unknown>;
    if (typeof payload !== 'object' || payload === null) return null;
    const aud = Array.isArray(payload.aud) ? payload.aud.join(' ') : payload.aud;
    return {
      audience: typeof aud === 'string' ? aud : null,
      roles: Array.isArray(payload.roles) ? payload.roles.filter((r): r is string => typeof r === 'string') : [],
      scopes: typeof payload.scp === 'string' ? payload.scp.split(' ').filter(Boolean) : [],
    };
  } catch {
    return null;
  }
}
