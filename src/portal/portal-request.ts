import type { FastifyReply, FastifyRequest } from 'fastify';
import type { AppPasswordAdmin } from '../admin/app-password-admin.js';
import type { HealthAdmin } from '../admin/health-admin.js';
import type { LockoutAdmin } from '../admin/lockout-admin.js';
import type { SignInLog } from '../admin/sign-in-log.js';
import type { Actor } from '../core/actor.js';
import type { Clock } from '../core/clock.js';
import type { EventLogger } from '../core/event-logger.js';
import type { PortalMetrics } from '../core/portal-metrics.js';
import type { PortalConfig } from '../config/config-schema.js';
import type { SafeHtml } from './html.js';
import type { OidcSignIn } from './oidc-sign-in.js';
import { renderPage, type PageViewer } from './page-layout.js';
import type { IdentityRules } from './portal-identity.js';
import type { PortalSession, PortalSessions } from './portal-sessions.js';
import type { Protocol } from '../core/protocol.js';

declare module 'fastify' {
  interface FastifyRequest {
    /** The signed-in session, loaded once per request (null: not signed in). */
    portal: PortalSession | null;
    /** What @fastify/csrf-protection reads the CSRF secret from (its '@fastify/session' mode): the session's. */
    session: { _csrf?: string };
  }
}

/** The use-cases of admin/ the portal calls; every rule of who may do what is theirs. */
export interface PortalAdmin {
  appPasswords: AppPasswordAdmin;
  signInLog: SignInLog;
  lockouts: LockoutAdmin;
  health: HealthAdmin;
}

/** What the route files share. */
export interface PortalContext {
  config: PortalConfig;
  /** The scopes a new password can have (every mail protocol: the portal may run apart from the mail listeners). */
  protocols: readonly Protocol[];
  admin: PortalAdmin;
  sessions: PortalSessions;
  signIn: OidcSignIn;
  rules: IdentityRules;
  log: EventLogger;
  metrics: PortalMetrics;
  clock: Clock;
  cookies: { session: string; signIn: string; secure: boolean };
}

/** The person behind a request, as admin/ takes them: role, account, mailboxes, address and user agent. */
export function actorOf(request: FastifyRequest): Actor {
  const s = request.portal!.session;
  const agent = request.headers['user-agent'];
  return { role: s.role, id: s.username, mailboxes: s.mailboxes, ip: request.ip, userAgent: typeof agent === 'string' ? agent : null };
}

export function viewerOf(request: FastifyRequest, reply: FastifyReply): PageViewer | null {
  if (request.portal === null) return null;
  return { username: request.portal.session.username, role: request.portal.session.role, csrfToken: reply.generateCsrf() };
}

/**
 * Sends a page. Every page of the portal is `Cache-Control: no-store`: they show who is signed in and what their
 * passwords are, and one of them the password itself (it must not stay in a cache or the back button's history).
 */
export function sendPage(request: FastifyRequest, reply: FastifyReply, title: string, body: SafeHtml, options: { current?: string; status?: number } = {}): FastifyReply {
  return reply
    .code(options.status ?? 200)
    .header('cache-control', 'no-store')
    .type('text/html; charset=utf-8')
    .send(renderPage({ title, body, viewer: viewerOf(request, reply), ...(options.current !== undefined ? { current: options.current } : {}) }));
}

/** preHandler: a page for signed-in people; a GET is sent to sign in first (and back), anything else refused. */
export async function requireUser(request: FastifyRequest, reply: FastifyReply): Promise<void> {
  if (request.portal !== null) return;
  if (request.method === 'GET') {
    await reply.redirect(`/auth/login?return=${encodeURIComponent(request.url)}`, 303);
    return;
  }
  await reply.code(401).header('cache-control', 'no-store').type('text/plain; charset=utf-8').send('Signed out: sign in again.');
}

/** A path of the portal to come back to, never another site (an open redirect). */
export function localPath(value: unknown, fallback: string): string {
  return typeof value === 'string' && /^\/(?![/\\])[^\s]*$/.test(value) ? value : fallback;
}

export function text(value: unknown): string {
  return typeof value === 'string' ? value : Array.isArray(value) && typeof value[0] === 'string' ? value[0] : '';
}
