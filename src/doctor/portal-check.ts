import * as oidc from 'openid-client';
import type { Config } from '../config/config-schema.js';
import { fail, pass, skip, warn, type CheckResult } from './doctor-report.js';

const NAME = 'portal sign-in';
/** Seconds for the discovery and for the one token request. */
const TIMEOUT_SECONDS = 10;

/**
 * The portal's OpenID provider, as a sign-in will meet it: discovery at the issuer (Entra ID of oauth.tenant by
 * default), the metadata the portal needs (code flow, PKCE S256 when the provider lists its methods, client_secret_post),
 * and the portal's client id and secret, proved by asking to redeem a code that cannot exist: a provider authenticates the
 * client first (RFC 6749 §4.1.3), so `invalid_client` means a wrong id or secret and `invalid_grant` means both were
 * taken. The detail names the redirect URI to register. Doctor touches no account and signs nobody in.
 */
export async function checkPortal(config: Config): Promise<CheckResult> {
  const portal = config.portal;
  if (!portal.enabled) return skip(NAME, 'portal.enabled is false');
  const issuer = portal.oidc.issuer!;
  const clientId = portal.oidc.client_id!;
  const redirectUri = `${portal.public_url!}/auth/callback`;
  const url = new URL(issuer);
  const loopback = url.protocol === 'http:' && ['127.0.0.1', '[::1]', 'localhost'].includes(url.hostname);
  let provider: oidc.Configuration;
  try {
    provider = await oidc.discovery(url, clientId, undefined, oidc.ClientSecretPost(portal.oidc.client_secret!), {
      timeout: TIMEOUT_SECONDS,
      ...(loopback ? { execute: [oidc.allowInsecureRequests] } : {}),
    });
  } catch (error) {
    return fail(
      NAME,
      `no OpenID provider metadata at ${issuer}: ${oneLine(error)}`,
      'passgate reads <issuer>/.well-known/openid-configuration. For Entra ID the issuer is ' +
        'https://login.microsoftonline.com/<tenant id>/v2.0 (oauth.tenant, or portal.oidc.issuer); AADSTS90002 means ' +
        'the tenant id is wrong. Check that this host can reach the provider over HTTPS (a proxy, a firewall).',
    );
  }
  const metadata = provider.serverMetadata();
  const lacks: string[] = [];
  if (!metadata.authorization_endpoint || !metadata.token_endpoint) lacks.push('an authorization or token endpoint');
  if (metadata.response_types_supported && !metadata.response_types_supported.includes('code')) lacks.push('the code flow');
  if (metadata.code_challenge_methods_supported && !metadata.code_challenge_methods_supported.includes('S256')) lacks.push('PKCE with S256');
  const auth = metadata.token_endpoint_auth_methods_supported;
  if (auth && !auth.includes('client_secret_post')) lacks.push('client_secret_post');
  if (lacks.length > 0) {
    return fail(NAME, `${issuer} does not offer ${lacks.join(', ')}`, 'The portal signs in with the authorization code flow, PKCE (S256) and a client secret sent in the form; use a provider that offers them.');
  }

  // The one request openid-client has no call for (a code that cannot exist), sent as the portal sends its own.
  let status: number;
  let answer: { error?: string; error_description?: string };
  try {
    const response = await fetch(metadata.token_endpoint!, {
      method: 'POST',
      headers: { 'content-type': 'application/x-www-form-urlencoded', accept: 'application/json' },
      body: new URLSearchParams({ grant_type: 'authorization_code', code: 'passgate-doctor-no-such-code', redirect_uri: redirectUri, client_id: clientId, client_secret: portal.oidc.client_secret! }),
      signal: AbortSignal.timeout(TIMEOUT_SECONDS * 1000),
    });
    status = response.status;
    answer = (await response.json().catch(() => ({}))) as typeof answer;
  } catch (error) {
    return fail(NAME, `no answer from ${metadata.token_endpoint}: ${oneLine(error)}`, 'Check that this host can reach the provider over HTTPS (a proxy, a firewall).');
  }
  if (status === 200) {
    return warn(NAME, `${issuer} redeemed a code that cannot exist`, 'The provider is not checking authorization codes. Do not use it for sign-in.');
  }
  const said = `${answer.error ?? `HTTP ${status}`}${answer.error_description ? `: ${oneLine(answer.error_description)}` : ''}`;
  if (answer.error === 'invalid_client' || answer.error === 'unauthorized_client') {
    return fail(
      NAME,
      `${issuer} refused the portal's client ${clientId}: ${said}`,
      'portal.oidc.client_id or portal.oidc.client_secret is wrong, or the secret has expired (Entra: App registrations → ' +
        'the portal app → Certificates & secrets; AADSTS7000215 is a wrong secret, AADSTS7000222 an expired one, ' +
        'AADSTS700016 a client id unknown in this tenant).',
    );
  }
  if (answer.error === 'invalid_grant') {
    return pass(NAME, `${issuer} answers and took client ${clientId}; the redirect URI to register is ${redirectUri} (platform: Web)`);
  }
  return warn(
    NAME,
    `${issuer} answers, but the client check was inconclusive: ${said}`,
    `The first sign-in will tell. Register the redirect URI ${redirectUri} (platform: Web) for client ${clientId}.`,
  );
}

/** An error's first line, short (never a secret: openid-client's messages and the provider's error text). */
function oneLine(error: unknown): string {
  const text = typeof error === 'string' ? error : ((error as Error).message ?? String(error));
  return text.split(/\r?\n/)[0]!.slice(0, 300);
}
