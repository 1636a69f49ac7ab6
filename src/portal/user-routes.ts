import type { FastifyInstance, FastifyReply, FastifyRequest } from 'fastify';
import { actsForEveryone } from '../core/actor.js';
import { isProtocol, type Protocol } from '../core/protocol.js';
import { createdPage, editPasswordPage, EXPIRY_PRESETS, myPasswordsPage, mySignInsPage, newPasswordPage, notice, revokeAllPage, setupSheetPage, type NewPasswordForm } from './password-pages.js';
import { actorOf, localPath, requireUser, sendPage, text, type PortalContext } from './portal-request.js';

/** What a change did, in words; the redirect after a POST carries only this code, never input. */
const DONE: Record<string, string> = {
  'turned-off': 'Turned off: it is refused at sign-in, and devices using it were disconnected. Turn it on again any time.',
  'turned-on': 'Turned on: devices can use it again, nothing to change on them.',
  revoked: 'Revoked for good: devices using it were disconnected.',
  'revoked-all': 'All app passwords were revoked.',
  unchanged: 'Nothing to change: it already was that way.',
  edited: 'Saved. The password itself is unchanged: nothing to do on the device.',
};

export function doneNotice(query: unknown) {
  const code = text((query as Record<string, unknown>).done);
  return notice('ok', DONE[code] ?? null);
}

/** The user's pages: their passwords, create (shown once), rename or extend, turn off/on, revoke, revoke all, setup sheet, sign-ins. */
export function registerUserRoutes(app: FastifyInstance, ctx: PortalContext): void {
  const { appPasswords, signInLog } = ctx.admin;
  // Fresh hook arrays for every route: @fastify/rate-limit appends its hook to the route's own array.
  const write = () => ({ preHandler: [requireUser, app.csrfProtection] });
  const read = () => ({ preHandler: [requireUser] });

  /** Creating needs a recent sign-in (portal.oidc.reauth_max_age_seconds): else the provider is asked again. */
  const needsReauth = (request: FastifyRequest) => ctx.clock() / 1000 - request.portal!.session.authTime > ctx.config.oidc.reauth_max_age_seconds;
  const reauth = (reply: FastifyReply) => reply.redirect(`/auth/login?reauth=1&return=${encodeURIComponent('/passwords/new')}`, 303);

  app.get('/passwords', read(), async (request, reply) => {
    const views = await appPasswords.list(actorOf(request));
    const body = myPasswordsPage(views, ctx.clock(), reply.generateCsrf(), doneNotice(request.query));
    return sendPage(request, reply, 'My app passwords', body, { current: '/passwords' });
  });

  // Sending and reading are what most devices need; POP3 is chosen when a device needs it (least privilege).
  const usual = ctx.protocols.filter((p) => p !== 'pop3');
  const blankForm = (request: FastifyRequest): NewPasswordForm => ({ name: '', scopes: usual.length > 0 ? usual : [...ctx.protocols], expiry: 'never', mailbox: request.portal!.session.mailboxes[0] ?? '' });

  app.get('/passwords/new', read(), async (request, reply) => {
    if (needsReauth(request)) return reauth(reply);
    return sendPage(request, reply, 'Create an app password', newPasswordPage(request.portal!.session.mailboxes, ctx.protocols, reply.generateCsrf(), blankForm(request), null), { current: '/passwords' });
  });

  const createLimit = {
    rateLimit: { max: ctx.config.create_per_hour, timeWindow: 3_600_000, hook: 'preHandler' as const, keyGenerator: (r: FastifyRequest) => r.portal?.session.username ?? r.ip },
  };
  app.post('/passwords', { ...write(), config: createLimit }, async (request, reply) => {
    if (needsReauth(request)) return reauth(reply);
    const body = request.body as Record<string, unknown>;
    const scopes = ([] as unknown[]).concat(body.scopes ?? []).filter((s): s is Protocol => typeof s === 'string' && isProtocol(s) && ctx.protocols.includes(s));
    const form: NewPasswordForm = { name: text(body.name), scopes, expiry: text(body.expiry), mailbox: text(body.mailbox) };
    const preset = EXPIRY_PRESETS.find(([value]) => value === form.expiry);
    const session = request.portal!.session;
    const again = (message: string) =>
      sendPage(request, reply, 'Create an app password', newPasswordPage(session.mailboxes, ctx.protocols, reply.generateCsrf(), form, message), { status: 400, current: '/passwords' });
    if (preset === undefined) return again('Choose when it expires.');
    if (scopes.length === 0) return again('Choose what it may do: send mail, read mail, or both.');
    // A person creates for their own mailboxes only (their own and those the config grants), admins included.
    if (!session.mailboxes.includes(form.mailbox)) return again('Choose one of your mailboxes.');
    try {
      const created = await appPasswords.create(actorOf(request), {
        username: session.username,
        name: form.name,
        mailbox: form.mailbox,
        scopes,
        expiresAt: preset[2] === 0 ? null : ctx.clock() + preset[2] * 86_400_000,
      });
      return sendPage(request, reply, 'Your new app password', createdPage(created), { current: '/passwords' });
    } catch (error) {
      const code = (error as { code?: string }).code;
      if (code === 'PG_INVALID_INPUT' || code === 'PG_LIMIT_REACHED') return again((error as Error).message);
      throw error;
    }
  });

  const change = (action: 'turnOff' | 'turnOn' | 'revoke', done: string) => async (request: FastifyRequest, reply: FastifyReply) => {
    const { id } = request.params as { id: string };
    const result = await appPasswords[action](actorOf(request), id);
    const back = localPath(text((request.body as Record<string, unknown>).back), '/passwords');
    return reply.redirect(`${back}${back.includes('?') ? '&' : '?'}done=${result.changed ? done : 'unchanged'}`, 303);
  };
  app.post('/passwords/:id/turn-off', write(), change('turnOff', 'turned-off'));
  app.post('/passwords/:id/turn-on', write(), change('turnOn', 'turned-on'));
  app.post('/passwords/:id/revoke', write(), change('revoke', 'revoked'));

  // Rename or change the expiry (the same rules as the CLI's `app-password edit`: a user their own, never a revoked one).
  app.get('/passwords/:id/edit', read(), async (request, reply) => {
    const { id } = request.params as { id: string };
    const view = await appPasswords.show(actorOf(request), id);
    const back = localPath(text((request.query as Record<string, unknown>).back), '/passwords');
    const page = editPasswordPage(view, reply.generateCsrf(), { name: view.name, expiry: 'keep' }, null, back);
    return sendPage(request, reply, `Rename or extend: ${view.name}`, page, { current: '/passwords' });
  });

  app.post('/passwords/:id/edit', write(), async (request, reply) => {
    const { id } = request.params as { id: string };
    const actor = actorOf(request);
    const body = request.body as Record<string, unknown>;
    const form = { name: text(body.name), expiry: text(body.expiry) };
    const back = localPath(text(body.back), '/passwords');
    const view = await appPasswords.show(actor, id);
    const again = (message: string) =>
      sendPage(request, reply, `Rename or extend: ${view.name}`, editPasswordPage(view, reply.generateCsrf(), form, message, back), { status: 400, current: '/passwords' });
    const preset = EXPIRY_PRESETS.find(([value]) => value === form.expiry);
    if (form.expiry !== 'keep' && preset === undefined) return again('Choose when it expires.');
    const patch = {
      ...(form.name.trim() !== view.name ? { name: form.name } : {}),
      ...(preset ? { expiresAt: preset[2] === 0 ? null : ctx.clock() + preset[2] * 86_400_000 } : {}),
    };
    if (Object.keys(patch).length === 0) return reply.redirect(`${back}${back.includes('?') ? '&' : '?'}done=unchanged`, 303);
    try {
      await appPasswords.edit(actor, id, patch);
    } catch (error) {
      if ((error as { code?: string }).code === 'PG_INVALID_INPUT') return again((error as Error).message);
      throw error;
    }
    return reply.redirect(`${back}${back.includes('?') ? '&' : '?'}done=edited`, 303);
  });

  app.get('/passwords/:id/setup', read(), async (request, reply) => {
    const { id } = request.params as { id: string };
    const actor = actorOf(request);
    const view = await appPasswords.show(actor, id);
    return sendPage(request, reply, `Setup sheet: ${view.name}`, setupSheetPage(view, await appPasswords.setupSheet(actor, id)), { current: '/passwords' });
  });

  /** An admin may name another user (?user=); anyone else revokes their own. */
  const revokeAllTarget = (request: FastifyRequest, given: string) => {
    const actor = actorOf(request);
    return actsForEveryone(actor) && given.trim() !== '' ? given.trim().toLowerCase() : actor.id;
  };

  app.get('/passwords/revoke-all', read(), async (request, reply) => {
    const username = revokeAllTarget(request, text((request.query as Record<string, unknown>).user));
    const live = (await appPasswords.list(actorOf(request), { username })).filter((v) => v.revokedAt === null);
    const forOther = username !== request.portal!.session.username;
    return sendPage(request, reply, 'Revoke all', revokeAllPage(username, live.length, reply.generateCsrf(), forOther), { current: forOther ? '/admin/passwords' : '/passwords' });
  });

  app.post('/passwords/revoke-all', write(), async (request, reply) => {
    const username = revokeAllTarget(request, text((request.body as Record<string, unknown>).user));
    await appPasswords.revokeAll(actorOf(request), username);
    // An emergency stop: the person's other portal sessions end too (this one stays).
    const own = username === request.portal!.session.username;
    await ctx.sessions.destroyAllFor(username, own ? request.portal : null);
    return reply.redirect(own ? '/passwords?done=revoked-all' : `/admin/passwords?user=${encodeURIComponent(username)}&done=revoked-all`, 303);
  });

  app.get('/sign-ins', read(), async (request, reply) => {
    const events = await signInLog.query(actorOf(request), { limit: 200 });
    return sendPage(request, reply, 'My sign-ins', mySignInsPage(events), { current: '/sign-ins' });
  });

}
