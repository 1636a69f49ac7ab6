import fastifyCookie from '@fastify/cookie';
import fastifyCsrf from '@fastify/csrf-protection';
import fastifyFormbody from '@fastify/formbody';
import fastifyHelmet from '@fastify/helmet';
import fastifyRateLimit from '@fastify/rate-limit';
import Fastify, { type FastifyError, type FastifyInstance } from 'fastify';
import type { AddressInfo } from 'node:net';
import type { Clock } from '../core/clock.js';
import type { EventLogger } from '../core/event-logger.js';
import type { PortalMetrics, PortalRefusal } from '../core/portal-metrics.js';
import { isGatewayError } from '../core/gateway-error.js';
import type { WebSessionStore } from '../core/web-session-store.js';
import type { PortalConfig } from '../config/config-schema.js';
import type { TlsCertificates } from '../tls/tls-certificates.js';
import { registerAdminRoutes } from './admin-routes.js';
import { registerAuthRoutes } from './auth-routes.js';
import { html } from './html.js';
import { OidcSignIn } from './oidc-sign-in.js';
import { PORTAL_ASSETS } from './portal-assets.js';
import { sendPage, type PortalAdmin, type PortalContext } from './portal-request.js';
import { PortalSessions } from './portal-sessions.js';
import { registerUserRoutes } from './user-routes.js';
import type { Protocol } from '../core/protocol.js';

export interface PortalServerDeps {
  admin: PortalAdmin;
  /** The scopes the create form offers. */
  protocols: readonly Protocol[];
  sessions: WebSessionStore;
  /**
   * With Redis, the rate limits count there, once for every instance (@fastify/rate-limit's Redis store, an ioredis
   * client the portal only hands on); null: in this instance's memory.
   */
  rateLimits: { redis: unknown; nameSpace: string } | null;
  /** The mail listeners' certificates (portal.tls: listener); null with portal.tls: none. */
  tls: TlsCertificates | null;
  log: EventLogger;
  metrics: PortalMetrics;
  clock: Clock;
}

/** What a refusal looks like to the person: status and plain words, by error code (details go to the log). */
const ERROR_PAGES: Record<string, [number, string, string]> = {
  PG_FORBIDDEN: [403, 'Not allowed', 'Your account may not do this.'],
  PG_NOT_FOUND: [404, 'Not found', 'There is no such app password, or it is not yours.'],
  PG_INVALID_INPUT: [400, 'Not possible', ''],
  PG_LIMIT_REACHED: [409, 'Limit reached', ''],
  FST_CSRF_MISSING_SECRET: [403, 'Form expired', 'This form did not come from your current portal session. Go back, reload the page and try again.'],
  FST_CSRF_INVALID_TOKEN: [403, 'Form expired', 'This form did not come from your current portal session. Go back, reload the page and try again.'],
};

const REFUSALS: Record<string, PortalRefusal> = { PG_FORBIDDEN: 'forbidden', FST_CSRF_MISSING_SECRET: 'csrf', FST_CSRF_INVALID_TOKEN: 'csrf' };

/**
 * The web portal (issue 16): fastify with its official plugins for cookies, security headers and a strict CSP (no
 * inline script or style), form bodies, rate limits and CSRF tokens; sign-in with OpenID Connect; sessions in the
 * WebSessionStore. It decides nothing about app passwords itself: every action goes to the use-cases of admin/
 * with the signed-in person as the actor.
 */
export class PortalServer {
  private readonly app: FastifyInstance;
  private closing: Promise<void> | undefined;

  constructor(
    private readonly config: PortalConfig,
    private readonly deps: PortalServerDeps,
  ) {
    const https = config.tls === 'listener' && deps.tls !== null ? deps.tls.serverOptions('TLSv1.2') : null;
    this.app = (https ? Fastify({ https, logger: false, trustProxy: trust(config) }) : Fastify({ logger: false, trustProxy: trust(config) })) as unknown as FastifyInstance;
  }

  /** Registers everything and listens on portal.host:portal.port. */
  async listen(): Promise<void> {
    const { config, deps } = this;
    const app = this.app;
    const oidc = config.oidc;
    const publicUrl = config.public_url!;
    const secure = publicUrl.startsWith('https:');
    const signIn = new OidcSignIn({
      issuer: oidc.issuer!,
      clientId: oidc.client_id!,
      clientSecret: oidc.client_secret!,
      redirectUri: `${publicUrl}/auth/callback`,
      reauthMaxAgeSeconds: oidc.reauth_max_age_seconds,
    });
    const sessions = new PortalSessions(deps.sessions, deps.clock, { sessionMs: config.session_minutes * 60_000, idleMs: config.idle_minutes * 60_000 });
    const ctx: PortalContext = {
      config,
      protocols: deps.protocols,
      admin: deps.admin,
      sessions,
      signIn,
      log: deps.log,
      metrics: deps.metrics,
      clock: deps.clock,
      // __Host-: the browser keeps it to this host, path / and HTTPS only (RFC 6265bis).
      cookies: secure ? { session: '__Host-passgate', signIn: '__Host-passgate-signin', secure } : { session: 'passgate', signIn: 'passgate-signin', secure },
      rules: {
        allowedDomains: oidc.allowed_domains,
        allowedClaim: oidc.allowed_claim,
        adminClaim: oidc.admin_claim,
        adminValues: oidc.admin_values,
        requireMfa: oidc.require_mfa,
        mailboxGrants: config.mailbox_grants,
      },
    };

    await app.register(fastifyCookie);
    await app.register(fastifyFormbody, { bodyLimit: 16 * 1024 });
    await app.register(fastifyHelmet, {
      contentSecurityPolicy: {
        useDefaults: false,
        directives: {
          defaultSrc: ["'none'"],
          scriptSrc: ["'self'"],
          styleSrc: ["'self'"],
          imgSrc: ["'self'"],
          connectSrc: ["'self'"],
          // A form whose answer is a redirect to the provider (re-authentication) must be allowed to go there.
          formAction: ["'self'", signIn.providerOrigin],
          frameAncestors: ["'none'"],
          baseUri: ["'none'"],
        },
      },
      strictTransportSecurity: secure ? { maxAge: 31_536_000, includeSubDomains: false } : false,
      referrerPolicy: { policy: 'no-referrer' },
    });
    const shared = deps.rateLimits === null ? {} : { redis: deps.rateLimits.redis, nameSpace: deps.rateLimits.nameSpace };
    await app.register(fastifyRateLimit, { global: false, ...shared, errorResponseBuilder: (_request, context) => ({ statusCode: 429, code: 'PG_RATE_LIMITED', message: `Too many requests: try again in ${context.after}.` }) });
    await app.register(fastifyCsrf, { sessionPlugin: '@fastify/session', sessionKey: '_csrf' });

    app.decorateRequest('portal', null);
    app.decorateRequest('session', null as never);
    app.addHook('onRequest', async (request) => {
      request.portal = request.url.startsWith('/assets/') ? null : await sessions.load(request.cookies[ctx.cookies.session]);
      request.session = request.portal === null ? {} : { _csrf: request.portal.csrf };
    });
    app.setErrorHandler((error: FastifyError, request, reply) => {
      const code = isGatewayError(error) ? error.code : error.code;
      const known = ERROR_PAGES[code] ?? (error.statusCode === 429 ? [429, 'Slow down', error.message] : undefined);
      if (known === undefined) {
        deps.log.error({ path: request.routeOptions.url ?? null, ip: request.ip, code: code ?? null, cause: error.message }, 'portal request failed');
        return sendPage(request, reply, 'Something went wrong', html`<h1>Something went wrong</h1><p>Try again in a moment. If it keeps happening, tell your IT team.</p>`, { status: 500 });
      }
      const [status, title, words] = known;
      const refusal = REFUSALS[code] ?? (status === 429 ? 'rate-limited' : undefined);
      if (refusal !== undefined) deps.metrics.refused(refusal);
      if (status === 403) deps.log.warn({ path: request.routeOptions.url ?? null, ip: request.ip, username: request.portal?.session.username ?? null, code }, 'portal request refused');
      return sendPage(request, reply, title, html`<h1>${title}</h1><p>${words === '' ? error.message : words}</p><p><a class="button" href="/passwords">Back to my app passwords</a></p>`, { status });
    });
    app.setNotFoundHandler((request, reply) => sendPage(request, reply, 'Not found', html`<h1>Not found</h1><p><a href="/">Go to the start page</a></p>`, { status: 404 }));

    for (const asset of Object.values(PORTAL_ASSETS)) {
      app.get(asset.path, (_request, reply) => reply.type(asset.type).header('cache-control', 'public, max-age=31536000, immutable').send(asset.body));
    }
    registerAuthRoutes(app, ctx);
    registerUserRoutes(app, ctx);
    registerAdminRoutes(app, ctx);
    await app.listen({ host: config.host, port: config.port });
  }

  get port(): number {
    return (this.app.server.address() as AddressInfo).port;
  }

  /** Stops accepting and closes open connections. Idempotent. */
  close(): Promise<void> {
    this.closing ??= this.app.close();
    return this.closing;
  }
}

function trust(config: PortalConfig): string[] | false {
  return config.trusted_proxies.length > 0 ? config.trusted_proxies : false;
}
