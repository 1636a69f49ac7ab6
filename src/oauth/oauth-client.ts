import { createHash, createPrivateKey, webcrypto, X509Certificate } from 'node:crypto';
import { readFileSync } from 'node:fs';
import { resolve } from 'node:path';
import * as client from 'openid-client';
import type { OAuthConfig } from '../config/config-schema.js';
import { GatewayError } from '../core/gateway-error.js';
import { EXCHANGE_ONLINE_AUDIENCE } from '../core/token-provider.js';

export interface TokenGrant {
  accessToken: string;
  expiresInSeconds: number;
  /** A new refresh token when the provider rotated it (Microsoft rotates on every use). */
  refreshToken: string | null;
}

export interface DeviceAuthorization {
  userCode: string;
  verificationUri: string;
  verificationUriComplete: string | null;
  expiresInSeconds: number;
  /** Provider's instruction text (Microsoft sends one). */
  message: string | null;
  response: client.DeviceAuthorizationResponse;
}

/** The default audience's scopes on Microsoft: app-only `.default`, or the delegated IMAP and SMTP permissions. */
const MICROSOFT_SCOPES = {
  app: [EXCHANGE_ONLINE_AUDIENCE],
  delegated: ['https://outlook.office.com/IMAP.AccessAsUser.All', 'https://outlook.office.com/SMTP.Send', 'offline_access'],
};

const LOOPBACK = new Set(['127.0.0.1', '[::1]', 'localhost']);

function configError(message: string): never {
  throw new GatewayError('PG_CONFIG_INVALID', message);
}

function endpoint(url: string, key: string): URL {
  const parsed = new URL(url);
  // Tokens travel over TLS; plain HTTP only to this machine (local test and demo servers).
  if (parsed.protocol !== 'https:' && !(parsed.protocol === 'http:' && LOOPBACK.has(parsed.hostname))) {
    configError(`${key}: must be an https:// URL (http:// is accepted for 127.0.0.1, [::1] and localhost only)`);
  }
  return parsed;
}

/** Entra's certificate credential: a PS256 assertion naming the certificate by its SHA-256 thumbprint. */
async function certificateAuth(config: OAuthConfig, baseDir: string, tokenEndpoint: URL): Promise<client.ClientAuth> {
  if (!config.private_key_file) configError('oauth.private_key_file: required with oauth.certificate_file');
  let certificate: X509Certificate;
  let pkcs8: Buffer;
  try {
    certificate = new X509Certificate(readFileSync(resolve(baseDir, config.certificate_file!)));
  } catch (cause) {
    configError(`oauth.certificate_file: cannot read a PEM certificate from ${config.certificate_file}: ${(cause as Error).message}`);
  }
  try {
    pkcs8 = createPrivateKey(readFileSync(resolve(baseDir, config.private_key_file))).export({ type: 'pkcs8', format: 'der' });
  } catch (cause) {
    configError(`oauth.private_key_file: cannot read a PEM private key from ${config.private_key_file}: ${(cause as Error).message}`);
  }
  const key = await webcrypto.subtle.importKey('pkcs8', pkcs8, { name: 'RSA-PSS', hash: 'SHA-256' }, false, ['sign']);
  const thumbprint = createHash('sha256').update(certificate.raw).digest('base64url');
  return client.PrivateKeyJwt(key as Parameters<typeof client.PrivateKeyJwt>[0], {
    [client.modifyAssertion]: (header, payload) => {
      header['x5t#S256'] = thumbprint;
      // Microsoft identity platform, certificate credentials: aud is the token endpoint.
      payload.aud = tokenEndpoint.href;
    },
  });
}

/** The protocol side of OAuth 2.0 (openid-client v6): client credentials, refresh, device code. */
export class OAuthClient {
  private constructor(
    private readonly configuration: client.Configuration,
    /** The default audience's scopes (`oauth.scopes`, or Microsoft's for the mode). */
    readonly scopes: string[],
    readonly tokenEndpoint: URL,
    private readonly mode: 'app' | 'delegated',
  ) {}

  static async create(config: OAuthConfig, baseDir: string): Promise<OAuthClient> {
    if (!config.client_id) configError('oauth.client_id: required to obtain tokens');
    let tokenUrl: URL;
    let deviceUrl: URL | null;
    let issuer: string;
    if (config.provider === 'microsoft') {
      if (!config.tenant) configError('oauth.tenant: required with oauth.provider microsoft (the tenant id or domain)');
      const base = `${config.authority_host.replace(/\/+$/, '')}/${encodeURIComponent(config.tenant)}`;
      tokenUrl = endpoint(config.token_endpoint ?? `${base}/oauth2/v2.0/token`, 'oauth.token_endpoint');
      deviceUrl = endpoint(config.device_authorization_endpoint ?? `${base}/oauth2/v2.0/devicecode`, 'oauth.device_authorization_endpoint');
      issuer = `${base}/v2.0`;
    } else {
      if (!config.token_endpoint) configError('oauth.token_endpoint: required with oauth.provider generic');
      tokenUrl = endpoint(config.token_endpoint, 'oauth.token_endpoint');
      deviceUrl = config.device_authorization_endpoint ? endpoint(config.device_authorization_endpoint, 'oauth.device_authorization_endpoint') : null;
      issuer = tokenUrl.origin;
    }

    let auth: client.ClientAuth;
    if (config.certificate_file) auth = await certificateAuth(config, baseDir, tokenUrl);
    else if (config.client_secret !== undefined) auth = client.ClientSecretPost(config.client_secret);
    else if (config.mode === 'delegated') auth = client.None(); // a public client, as device-code apps often are
    else configError('oauth.client_secret: required in app mode (or oauth.certificate_file with oauth.private_key_file)');

    const metadata: client.ServerMetadata = {
      issuer,
      token_endpoint: tokenUrl.href,
      ...(deviceUrl ? { device_authorization_endpoint: deviceUrl.href } : {}),
    };
    const configuration = new client.Configuration(metadata, config.client_id, undefined, auth);
    configuration.timeout = config.request_timeout_seconds;
    if (tokenUrl.protocol === 'http:') client.allowInsecureRequests(configuration);
    const scopes = config.scopes ?? (config.provider === 'microsoft' ? MICROSOFT_SCOPES[config.mode] : []);
    return new OAuthClient(configuration, scopes, tokenUrl, config.mode);
  }

  /**
   * The scopes asked for an audience: the configured ones for the default audience (as before audiences existed);
   * for any other, the audience itself (`https://graph.microsoft.com/.default`), plus `offline_access` in
   * delegated mode so the provider keeps issuing refresh tokens.
   */
  private scopeParameter(audience: string = EXCHANGE_ONLINE_AUDIENCE): Record<string, string> {
    const scopes = audience === EXCHANGE_ONLINE_AUDIENCE ? this.scopes : this.mode === 'app' ? [audience] : [audience, 'offline_access'];
    return scopes.length > 0 ? { scope: scopes.join(' ') } : {};
  }

  private grant(response: client.TokenEndpointResponse & client.TokenEndpointResponseHelpers): TokenGrant {
    return {
      accessToken: response.access_token,
      // A provider that omits expires_in gets a conservative hour (Entra always sends it).
      expiresInSeconds: response.expiresIn() ?? 3600,
      refreshToken: response.refresh_token ?? null,
    };
  }

  async clientCredentials(audience: string = EXCHANGE_ONLINE_AUDIENCE): Promise<TokenGrant> {
    return this.grant(await client.clientCredentialsGrant(this.configuration, this.scopeParameter(audience)));
  }

  async refresh(refreshToken: string, audience: string = EXCHANGE_ONLINE_AUDIENCE): Promise<TokenGrant> {
    return this.grant(await client.refreshTokenGrant(this.configuration, refreshToken, this.scopeParameter(audience)));
  }

  async startDeviceAuthorization(): Promise<DeviceAuthorization> {
    if (!this.configuration.serverMetadata().device_authorization_endpoint) {
      configError('oauth.device_authorization_endpoint: required for oauth connect with a generic provider');
    }
    const response = await client.initiateDeviceAuthorization(this.configuration, this.scopeParameter());
    return {
      userCode: response.user_code,
      verificationUri: response.verification_uri,
      verificationUriComplete: response.verification_uri_complete ?? null,
      expiresInSeconds: response.expires_in,
      message: typeof response.message === 'string' ? response.message : null,
      response,
    };
  }

  /** Polls at the provider's interval (slowing down when told) until the user approves, refuses or time runs out. */
  async pollDeviceAuthorization(authorization: DeviceAuthorization, signal?: AbortSignal): Promise<TokenGrant> {
    return this.grant(await client.pollDeviceAuthorizationGrant(this.configuration, authorization.response, undefined, signal ? { signal } : undefined));
  }
}
