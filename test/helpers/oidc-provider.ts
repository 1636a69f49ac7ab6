import { generateKeyPairSync, randomBytes } from 'node:crypto';
import { once } from 'node:events';
import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import Provider from 'oidc-provider';

export interface TestAccount {
  email: string;
  name: string;
  /** App roles (Entra's `roles` claim). */
  roles?: string[];
  groups?: string[];
}

export interface OidcProviderOptions {
  accounts: TestAccount[];
  /** Redirect URIs the portal's client may use (`<public_url>/auth/callback`). */
  redirectUris: string[];
  clientId?: string;
  clientSecret?: string;
}

const escape = (text: string) => text.replace(/[&<>"']/g, (c) => `&#${c.charCodeAt(0)};`);

/**
 * A real OpenID provider (oidc-provider) on 127.0.0.1 standing in for Entra ID: one confidential client for the
 * portal (client_secret_post, authorization code + PKCE), accounts with email, roles and groups, an `amr` of
 * `pwd` or `pwd mfa` as the person chooses on its sign-in page, and `max_age` / `prompt=login` honoured (oidc-
 * provider asks for a new login then). Consent is implied (as for an Entra app with admin consent). Its sign-in page
 * is a list of accounts with one button each, plus an "MFA" checkbox: the browser tests click it, and the demo too.
 */
export class TestOidcProvider {
  readonly clientId: string;
  readonly clientSecret: string;
  /** Logins completed, newest last: which account and whether with MFA. */
  readonly logins: { email: string; mfa: boolean }[] = [];
  private server: Server | null = null;
  private provider: Provider | null = null;
  port = 0;

  constructor(private readonly options: OidcProviderOptions) {
    this.clientId = options.clientId ?? 'passgate-portal';
    this.clientSecret = options.clientSecret ?? randomBytes(24).toString('base64url');
  }

  get issuer(): string {
    return `http://127.0.0.1:${this.port}`;
  }

  /** Starts listening first (the issuer names the port), then builds the provider. */
  async start(port = 0): Promise<this> {
    const server = createServer((req, res) => void this.handle(req, res));
    server.listen(port, '127.0.0.1');
    await once(server, 'listening');
    this.server = server;
    this.port = (server.address() as AddressInfo).port;
    const { privateKey } = generateKeyPairSync('rsa', { modulusLength: 2048 });
    const accounts = new Map(this.options.accounts.map((a) => [a.email, a]));
    this.provider = new Provider(this.issuer, {
      clients: [
        {
          client_id: this.clientId,
          client_secret: this.clientSecret,
          redirect_uris: this.options.redirectUris,
          token_endpoint_auth_method: 'client_secret_post',
          grant_types: ['authorization_code'],
          response_types: ['code'],
        },
      ],
      jwks: { keys: [{ ...privateKey.export({ format: 'jwk' }), kid: 'test', use: 'sig', alg: 'RS256' }] as never },
      cookies: { keys: [randomBytes(16).toString('hex')] },
      // Like Entra, every ID token says how and when the person authenticated (amr, auth_time).
      claims: { acr: null, amr: null, auth_time: null, sid: null, iss: null, openid: ['sub', 'amr', 'auth_time'], email: ['email', 'email_verified'], profile: ['name', 'preferred_username', 'roles', 'groups'] },
      // Like Entra: what the scopes ask for is in the ID token itself.
      conformIdTokenClaims: false,
      features: { devInteractions: { enabled: false } },
      ttl: { Interaction: 600, Grant: 3600, Session: 86_400, AccessToken: 3600, IdToken: 3600, AuthorizationCode: 60 },
      interactions: { url: (_ctx, interaction) => `/interaction/${interaction.uid}` },
      async findAccount(_ctx, sub) {
        const account = accounts.get(sub);
        if (!account) return undefined;
        return {
          accountId: sub,
          claims: async () => ({ sub, email: account.email, email_verified: true, name: account.name, preferred_username: account.email, roles: account.roles ?? [], groups: account.groups ?? [] }),
        };
      },
      // Consent is implied: every client here is first-party.
      async loadExistingGrant(ctx) {
        const grant = new ctx.oidc.provider.Grant({ clientId: ctx.oidc.client!.clientId, accountId: ctx.oidc.session!.accountId! });
        grant.addOIDCScope('openid email profile');
        await grant.save();
        return grant;
      },
    });
    return this;
  }

  /** Removes an account: its next sign-in fails (someone who left the company). */
  forget(email: string): void {
    this.options.accounts = this.options.accounts.filter((a) => a.email !== email);
  }

  async stop(): Promise<void> {
    if (!this.server) return;
    this.server.closeAllConnections();
    await new Promise<void>((resolve) => this.server!.close(() => resolve()));
    this.server = null;
  }

  private async handle(req: IncomingMessage, res: ServerResponse): Promise<void> {
    const provider = this.provider!;
    try {
      const match = /^\/interaction\/([\w-]+)(\/login)?$/.exec(req.url ?? '');
      if (match === null) return provider.callback()(req, res);
      const details = await provider.interactionDetails(req, res);
      if (match[2] && req.method === 'POST') {
        const form = new URLSearchParams(await body(req));
        const email = form.get('account') ?? '';
        const mfa = form.get('mfa') === 'on';
        if (!this.options.accounts.some((a) => a.email === email)) throw new Error('unknown account');
        this.logins.push({ email, mfa });
        await provider.interactionFinished(req, res, { login: { accountId: email, amr: mfa ? ['pwd', 'mfa'] : ['pwd'] } }, { mergeWithLastSubmission: false });
        return;
      }
      res.writeHead(200, { 'content-type': 'text/html; charset=utf-8', 'cache-control': 'no-store' });
      res.end(`<!doctype html><html lang="en"><head><meta charset="utf-8"><meta name="viewport" content="width=device-width, initial-scale=1"><title>Test sign-in</title></head>
<body style="font-family:system-ui;max-width:30rem;margin:3rem auto"><h1>Test identity provider</h1><p>Sign in as (${escape(details.prompt.name)}):</p>
<form method="post" action="/interaction/${escape(details.uid)}/login">
<p><label><input type="checkbox" name="mfa" checked> with multi-factor authentication</label></p>
${this.options.accounts.map((a) => `<p><button type="submit" name="account" value="${escape(a.email)}">${escape(a.name)} &lt;${escape(a.email)}&gt;</button></p>`).join('\n')}
</form></body></html>`);
    } catch (error) {
      res.writeHead(400, { 'content-type': 'text/plain' });
      res.end(`interaction failed: ${(error as Error).message}`);
    }
  }
}

async function body(req: IncomingMessage): Promise<string> {
  let text = '';
  for await (const chunk of req) text += String(chunk);
  return text;
}
