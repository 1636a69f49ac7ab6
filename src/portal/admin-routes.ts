import type { FastifyInstance, FastifyReply, FastifyRequest } from 'fastify';
import type { AppPasswordStatus } from '../core/app-password-record.js';
import { AUDIT_REASONS, type AuditReason } from '../core/audit-log.js';
import { GatewayError } from '../core/gateway-error.js';
import { LOCKOUT_KINDS, type LockoutKind } from '../core/lockout-list.js';
import { allPasswordsPage, allSignInsPage, healthPage, lockoutsPage, type PasswordFilter, type SignInFilter } from './admin-pages.js';
import { notice } from './password-pages.js';
import { actorOf, requireUser, sendPage, text, type PortalContext } from './portal-request.js';
import { doneNotice } from './user-routes.js';
import { isProtocol } from '../core/protocol.js';

const STATUSES: readonly AppPasswordStatus[] = ['active', 'off', 'expired', 'revoked'];

/** preHandler: admins only (the use-cases of admin/ check it again). */
async function requireAdmin(request: FastifyRequest): Promise<void> {
  if (request.portal?.session.role !== 'admin') throw new GatewayError('PG_FORBIDDEN', 'this is for admins only');
}

/** The admin pages: everyone's passwords (the actions are the user routes'), the sign-in log, lockouts, health. */
export function registerAdminRoutes(app: FastifyInstance, ctx: PortalContext): void {
  const { appPasswords, signInLog, lockouts, health } = ctx.admin;
  // Fresh hook arrays for every route (plugins may append to a route's own).
  const read = () => ({ preHandler: [requireUser, requireAdmin] });
  const write = () => ({ preHandler: [requireUser, requireAdmin, app.csrfProtection] });

  app.get('/admin/passwords', read(), async (request: FastifyRequest, reply: FastifyReply) => {
    const q = request.query as Record<string, unknown>;
    const filter: PasswordFilter = { q: text(q.q), status: text(q.status), user: text(q.user) };
    const status = STATUSES.find((s) => s === filter.status);
    const views = await appPasswords.list(actorOf(request), {
      ...(filter.q.trim() !== '' ? { search: filter.q } : {}),
      ...(filter.user.trim() !== '' ? { username: filter.user } : {}),
      ...(status !== undefined ? { status } : {}),
    });
    return sendPage(request, reply, 'All app passwords', allPasswordsPage(views, ctx.clock(), reply.generateCsrf(), filter, doneNotice(q)), { current: '/admin/passwords' });
  });

  app.get('/admin/sign-ins', read(), async (request, reply) => {
    const q = request.query as Record<string, unknown>;
    const filter: SignInFilter = { user: text(q.user), reason: text(q.reason), protocol: text(q.protocol) };
    const reason = AUDIT_REASONS.find((r): r is AuditReason => r === filter.reason);
    const protocol = typeof filter.protocol === 'string' && isProtocol(filter.protocol) ? filter.protocol : undefined;
    const events = await signInLog.query(actorOf(request), {
      limit: 300,
      ...(filter.user.trim() !== '' ? { username: filter.user } : {}),
      ...(reason !== undefined ? { reason } : {}),
      ...(protocol !== undefined ? { protocol } : {}),
    });
    return sendPage(request, reply, 'Sign-in log', allSignInsPage(events, filter), { current: '/admin/sign-ins' });
  });

  app.get('/admin/lockouts', read(), async (request, reply) => {
    const list = await lockouts.list(actorOf(request));
    const done = text((request.query as Record<string, unknown>).done);
    const message = notice('ok', done === 'unlocked' ? 'Unlocked.' : done === 'gone' ? 'That lockout had already ended.' : null);
    return sendPage(request, reply, 'Lockouts', lockoutsPage(list, reply.generateCsrf(), message), { current: '/admin/lockouts' });
  });

  app.post('/admin/lockouts/unlock', write(), async (request, reply) => {
    const body = request.body as Record<string, unknown>;
    const kind = LOCKOUT_KINDS.find((k): k is LockoutKind => k === text(body.kind));
    if (kind === undefined) throw new GatewayError('PG_INVALID_INPUT', 'unknown lockout kind');
    const listed = await lockouts.unlock(actorOf(request), kind, text(body.key));
    return reply.redirect(`/admin/lockouts?done=${listed ? 'unlocked' : 'gone'}`, 303);
  });

  app.get('/admin/health', read(), async (request, reply) => {
    return sendPage(request, reply, 'Health', healthPage(await health.status(actorOf(request))), { current: '/admin/health' });
  });
}
