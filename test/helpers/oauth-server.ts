import { constants, createHash, randomBytes, verify as verifySignature, X509Certificate } from 'node:crypto';
import { once } from 'node:events';
import { appendFileSync, existsSync, readFileSync } from 'node:fs';
import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';

interface IssuedToken {
  subject: string;
  scope: string;
  expiresAt: number;
}

export interface Failure {
  status: number;
  body: string;
  contentType?: string;
}

export interface OAuthServerOptions {
  clientId?: string;
  clientSecret?: string;
  /** PEM certificate whose key may sign client assertions (Entra-style, x5t#S256, PS256). */
  certificatePem?: string;
  /** Seconds an access token lives. */
  tokenLifetime?: number;
  /**
   * A file that keeps every access token issued (one JSON line each, written before the answer) and is read at
   * construction: a server killed as a process and started again on the same file still honours its tokens, as a
   * provider's signed tokens outlive a restart (the chaos run, test/chaos/dependency-process.ts).
   */
  stateFile?: string;
}

/**
 * A real OAuth 2.0 authorization server on 127.0.0.1 for tests: token endpoint (client_credentials,
 * refresh_token with rotation, device_code), device authorization, and RFC 7662 introspection. It can be told to
 * fail the next requests or to answer slowly, and counts what it was asked.
 */
export class TestOAuthServer {
  readonly clientId: string;
  readonly clientSecret: string;
  tokenLifetime: number;
  /** Milliseconds the token endpoint waits before answering. */
  delayMs = 0;
  /**
   * When set, access tokens are shaped like Entra's JWTs with these claims (aud, roles, scp, ...) in the payload
   * and a meaningless signature; introspection still knows them by their whole text.
   */
  jwtClaims: Record<string, unknown> | null = null;
  readonly counts = { token: 0, client_credentials: 0, refresh_token: 0, device_code: 0, devicecode: 0, introspect: 0 };
  /** Client assertions received (decoded header and payload), for inspection. */
  readonly assertions: { header: Record<string, unknown>; payload: Record<string, unknown> }[] = [];
  private failures: Failure[] = [];
  private readonly accessTokens = new Map<string, IssuedToken>();
  private readonly refreshTokens = new Map<string, { subject: string; scope: string }>();
  private readonly devices = new Map<string, { userCode: string; subject: string | null; denied: boolean; scope: string }>();
  private readonly certificate: X509Certificate | null;
  private server: Server | null = null;
  private readonly stateFile: string | null;
  port = 0;

  constructor(options: OAuthServerOptions = {}) {
    this.clientId = options.clientId ?? 'passgate-test-client';
    this.clientSecret = options.clientSecret ?? 'test-client-secret-value';
    this.tokenLifetime = options.tokenLifetime ?? 3600;
    this.certificate = options.certificatePem ? new X509Certificate(options.certificatePem) : null;
    this.stateFile = options.stateFile ?? null;
    if (this.stateFile && existsSync(this.stateFile)) {
      for (const line of readFileSync(this.stateFile, 'utf8').split('\n')) {
        if (!line) continue;
        const { access, grant, ...issued } = JSON.parse(line) as IssuedToken & { access: string; grant: string };
        this.accessTokens.set(access, issued);
        if (grant === 'client_credentials') this.counts.client_credentials++;
        if (grant === 'refresh_token') this.counts.refresh_token++;
      }
    }
  }

  get url(): string {
    return `http://127.0.0.1:${this.port}`;
  }
  get tokenEndpoint(): string {
    return `${this.url}/token`;
  }
  get deviceEndpoint(): string {
    return `${this.url}/devicecode`;
  }
  get introspectionEndpoint(): string {
    return `${this.url}/introspect`;
  }

  async start(port = 0): Promise<this> {
    this.server = createServer((req, res) => void this.handle(req, res));
    this.server.listen(port, '127.0.0.1');
    await once(this.server, 'listening');
    this.port = (this.server.address() as { port: number }).port;
    return this;
  }

  async stop(): Promise<void> {
    if (!this.server) return;
    const server = this.server;
    this.server = null;
    server.closeAllConnections();
    server.close();
    await once(server, 'close');
  }

  /** The next `count` token requests fail with this answer. */
  failNext(count: number, failure: Failure): void {
    for (let i = 0; i < count; i++) this.failures.push(failure);
  }

  static oauthError(status: number, error: string, description = ''): Failure {
    return { status, body: JSON.stringify({ error, error_description: description }), contentType: 'application/json' };
  }

  /** A refresh token for `subject`, as if obtained earlier (to import). */
  mintRefreshToken(subject: string, scope = 'mail'): string {
    const token = `rt-${randomBytes(16).toString('hex')}`;
    this.refreshTokens.set(token, { subject, scope });
    return token;
  }

  /** Revokes every refresh token of a subject (consent withdrawn). */
  revokeGrants(subject: string): void {
    for (const [token, grant] of this.refreshTokens) if (grant.subject === subject) this.refreshTokens.delete(token);
  }

  /** The user at the verification page approves (or denies) the device code with this user code. */
  approveDevice(userCode: string, subject: string, deny = false): void {
    for (const device of this.devices.values()) {
      if (device.userCode === userCode) {
        device.subject = subject;
        device.denied = deny;
      }
    }
  }

  /** RFC 7662 view of an access token (also used by upstream test servers). */
  introspect(token: string): { active: boolean; subject?: string; scope?: string } {
    const issued = this.accessTokens.get(token);
    if (!issued || issued.expiresAt <= Date.now()) return { active: false };
    return { active: true, subject: issued.subject, scope: issued.scope };
  }

  /** Every access token issued so far (tests grep logs for them). */
  issuedAccessTokens(): string[] {
    return [...this.accessTokens.keys()];
  }

  /** Forgets every access token issued: introspection answers inactive for all of them. */
  forgetAccessTokens(): void {
    this.accessTokens.clear();
  }

  currentRefreshTokens(): string[] {
    return [...this.refreshTokens.keys()];
  }

  get activeRefreshTokens(): number {
    return this.refreshTokens.size;
  }

  private async handle(req: IncomingMessage, res: ServerResponse): Promise<void> {
    const chunks: Buffer[] = [];
    for await (const chunk of req) chunks.push(chunk as Buffer);
    const form = new URLSearchParams(Buffer.concat(chunks).toString('utf8'));
    const send = (status: number, body: unknown) => {
      res.writeHead(status, { 'content-type': 'application/json', 'cache-control': 'no-store' });
      res.end(JSON.stringify(body));
    };
    try {
      if (req.method === 'POST' && req.url === '/introspect') {
        this.counts.introspect++;
        const view = this.introspect(form.get('token') ?? '');
        return send(200, view.active ? { active: true, sub: view.subject, username: view.subject, scope: view.scope, client_id: this.clientId } : { active: false });
      }
      if (req.method === 'POST' && req.url === '/devicecode') {
        this.counts.devicecode++;
        const deviceCode = randomBytes(16).toString('hex');
        const userCode = randomBytes(4).toString('hex').toUpperCase();
        this.devices.set(deviceCode, { userCode, subject: null, denied: false, scope: form.get('scope') ?? '' });
        return send(200, {
          device_code: deviceCode,
          user_code: userCode,
          verification_uri: `${this.url}/device`,
          expires_in: 600,
          interval: 1,
          message: `To sign in, open ${this.url}/device and enter the code ${userCode}.`,
        });
      }
      if (req.method === 'POST' && req.url === '/token') return await this.token(form, send, res);
      send(404, { error: 'not_found' });
    } catch (error) {
      send(500, { error: 'server_error', error_description: (error as Error).message });
    }
  }

  private clientAuthenticated(form: URLSearchParams): boolean {
    if (form.get('client_id') !== this.clientId && !form.get('client_assertion')) return false;
    if (form.get('client_secret') !== null) return form.get('client_secret') === this.clientSecret;
    const assertion = form.get('client_assertion');
    if (assertion && this.certificate) {
      const [h, p, s] = assertion.split('.');
      const header = JSON.parse(Buffer.from(h!, 'base64url').toString()) as Record<string, unknown>;
      const payload = JSON.parse(Buffer.from(p!, 'base64url').toString()) as Record<string, unknown>;
      this.assertions.push({ header, payload });
      const thumbprint = createHash('sha256').update(this.certificate.raw).digest('base64url');
      const signed = verifySignature(
        'sha256',
        Buffer.from(`${h}.${p}`),
        { key: this.certificate.publicKey, padding: constants.RSA_PKCS1_PSS_PADDING, saltLength: 32 },
        Buffer.from(s!, 'base64url'),
      );
      return (
        signed &&
        header.alg === 'PS256' &&
        header['x5t#S256'] === thumbprint &&
        payload.aud === this.tokenEndpoint &&
        payload.iss === this.clientId &&
        payload.sub === this.clientId &&
        typeof payload.exp === 'number' &&
        payload.exp * 1000 > Date.now()
      );
    }
    return false; // no public clients here
  }

  private issue(subject: string, scope: string, withRefresh: boolean, grant: string): Record<string, unknown> {
    const opaque = `at-${randomBytes(24).toString('hex')}`;
    const part = (value: unknown) => Buffer.from(JSON.stringify(value)).toString('base64url');
    const access = this.jwtClaims ? `${part({ typ: 'JWT', alg: 'RS256' })}.${part({ ...this.jwtClaims, jti: opaque })}.${part(opaque)}` : opaque;
    const issued = { subject, scope, expiresAt: Date.now() + this.tokenLifetime * 1000 };
    this.accessTokens.set(access, issued);
    if (this.stateFile) appendFileSync(this.stateFile, `${JSON.stringify({ access, grant, ...issued })}\n`);
    const body: Record<string, unknown> = { token_type: 'Bearer', access_token: access, expires_in: this.tokenLifetime, scope };
    if (withRefresh) body.refresh_token = this.mintRefreshToken(subject, scope);
    return body;
  }

  private async token(form: URLSearchParams, send: (status: number, body: unknown) => void, res: ServerResponse): Promise<void> {
    this.counts.token++;
    const grantType = form.get('grant_type') ?? '';
    // Counted on receipt, so a slow answer still in flight never lands in a later test's count.
    if (grantType === 'client_credentials') this.counts.client_credentials++;
    if (grantType === 'refresh_token') this.counts.refresh_token++;
    if (grantType.endsWith(':device_code')) this.counts.device_code++;
    if (this.delayMs > 0) await new Promise((r) => setTimeout(r, this.delayMs));
    const failure = this.failures.shift();
    if (failure) {
      res.writeHead(failure.status, { 'content-type': failure.contentType ?? 'text/html' });
      res.end(failure.body);
      return;
    }
    if (!this.clientAuthenticated(form)) return send(401, { error: 'invalid_client', error_description: 'AADSTS7000215: Invalid client secret provided.' });
    const scope = form.get('scope') ?? '';
    if (grantType === 'client_credentials') {
      return send(200, this.issue('app', scope, false, grantType));
    }
    if (grantType === 'refresh_token') {
      const old = form.get('refresh_token') ?? '';
      const grant = this.refreshTokens.get(old);
      if (!grant) {
        return send(400, { error: 'invalid_grant', error_description: 'AADSTS70043: The refresh token has expired or is invalid due to sign-in frequency checks.' });
      }
      this.refreshTokens.delete(old); // rotation: the old refresh token is dead from now on
      // A refresh may ask for another resource's scope (Entra: one grant, tokens for each consented resource).
      return send(200, this.issue(grant.subject, form.get('scope') || grant.scope, true, grantType));
    }
    if (grantType === 'urn:ietf:params:oauth:grant-type:device_code') {
      const device = this.devices.get(form.get('device_code') ?? '');
      if (!device) return send(400, { error: 'expired_token' });
      if (device.denied) return send(400, { error: 'access_denied', error_description: 'AADSTS70000: the user declined' });
      if (!device.subject) return send(400, { error: 'authorization_pending' });
      this.devices.delete(form.get('device_code')!);
      return send(200, this.issue(device.subject, device.scope, true, grantType));
    }
    send(400, { error: 'unsupported_grant_type' });
  }
}
