import * as oidc from 'openid-client';
import { GatewayError } from '../core/gateway-error.js';

export interface OidcSignInOptions {
  issuer: string;
  clientId: string;
  clientSecret: string;
  /** `<public_url>/auth/callback`, as registered at the provider. */
  redirectUri: string;
  /** A sign-in at most this old is needed to create a password (portal.oidc.reauth_max_age_seconds). */
  reauthMaxAgeSeconds: number;
}

/** What the portal keeps (server-side, in a short-lived pre-sign-in session) between the redirect and the callback. */
export interface PendingSignIn {
  state: string;
  nonce: string;
  codeVerifier: string;
  /** Set when the provider was asked to authenticate again (max_age + prompt=login). */
  maxAge: number | null;
  /** A path of the portal to go back to. */
  returnTo: string;
}

/**
 * OpenID Connect sign-in on openid-client: authorization code with PKCE (S256), state and nonce; the ID token's
 * signature, issuer, audience, nonce and (when re-authenticating) auth_time are checked by openid-client. The
 * provider's metadata is discovered on first use and kept, so a provider briefly down does not stop the portal
 * from starting. An http:// issuer is accepted only on a loopback address (tests and the demo).
 */
export class OidcSignIn {
  private config: Promise<oidc.Configuration> | null = null;

  constructor(private readonly options: OidcSignInOptions) {}

  /** The provider's origin, for the CSP's form-action (a form whose answer redirects to the provider). */
  get providerOrigin(): string {
    return new URL(this.options.issuer).origin;
  }

  async start(options: { reauth: boolean; returnTo: string }): Promise<{ url: string; pending: PendingSignIn }> {
    const config = await this.discover();
    const codeVerifier = oidc.randomPKCECodeVerifier();
    const pending: PendingSignIn = {
      state: oidc.randomState(),
      nonce: oidc.randomNonce(),
      codeVerifier,
      maxAge: options.reauth ? this.options.reauthMaxAgeSeconds : null,
      returnTo: options.returnTo,
    };
    const parameters: Record<string, string> = {
      redirect_uri: this.options.redirectUri,
      scope: 'openid email profile',
      response_type: 'code',
      code_challenge: await oidc.calculatePKCECodeChallenge(codeVerifier),
      code_challenge_method: 'S256',
      state: pending.state,
      nonce: pending.nonce,
    };
    // Like Google's and Fastmail's "verify it's you": ask the provider for a fresh authentication.
    if (pending.maxAge !== null) Object.assign(parameters, { max_age: String(pending.maxAge), prompt: 'login' });
    return { url: oidc.buildAuthorizationUrl(config, parameters).href, pending };
  }

  /** The ID token's claims after the code exchange; throws when the provider's answer does not check out. */
  async finish(callbackUrl: URL, pending: PendingSignIn): Promise<Record<string, unknown>> {
    const config = await this.discover();
    const tokens = await oidc.authorizationCodeGrant(config, callbackUrl, {
      pkceCodeVerifier: pending.codeVerifier,
      expectedState: pending.state,
      expectedNonce: pending.nonce,
      idTokenExpected: true,
      ...(pending.maxAge !== null ? { maxAge: pending.maxAge } : {}),
    });
    const claims = tokens.claims();
    if (claims === undefined) throw new GatewayError('PG_UPSTREAM_FAILED', 'the provider returned no ID token');
    return claims as Record<string, unknown>;
  }

  private discover(): Promise<oidc.Configuration> {
    if (this.config === null) {
      const { issuer, clientId, clientSecret } = this.options;
      const url = new URL(issuer);
      const loopback = url.protocol === 'http:' && ['127.0.0.1', '[::1]', 'localhost'].includes(url.hostname);
      const attempt = oidc.discovery(url, clientId, undefined, oidc.ClientSecretPost(clientSecret), loopback ? { execute: [oidc.allowInsecureRequests] } : {});
      // A failed discovery is tried again at the next sign-in.
      attempt.catch(() => {
        if (this.config === attempt) this.config = null;
      });
      this.config = attempt;
    }
    return this.config;
  }
}
