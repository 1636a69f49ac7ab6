import type { FastifyInstance, FastifyReply, FastifyRequest } from 'fastify';
import { html } from './html.js';
import { identityFromClaims, SIGN_IN_REFUSALS } from './portal-identity.js';
import { localPath, sendPage, text, type PortalContext } from './portal-request.js';

/** Sign-in with OpenID Connect (oidc-sign-in.ts) and sign-out; rate-limited per address (portal.sign_in_per_minute). */
export function registerAuthRoutes(app: FastifyInstance, ctx: PortalContext): void {
  const { sessions, signIn, log, cookies } = ctx;
  const signInLimit = { rateLimit: { max: ctx.config.sign_in_per_minute, timeWindow: 60_000 } };
  const cookieOptions = { httpOnly: true, secure: cookies.secure, sameSite: 'lax' as const, path: '/' };

  app.get('/', async (request, reply) => {
    if (request.portal !== null) return reply.redirect('/passwords', 303);
    return sendPage(
      request,
      reply,
      'Sign in',
      html`<div class="signin"><div class="card">
<h1>App passwords</h1>
<p>Create passwords for your printer, scanner or mail app, see where they are used, and switch them off.</p>
<p><a class="button primary" href="/auth/login">Sign in with your company account</a></p>
</div></div>`,
    );
  });

  app.get('/auth/login', { config: signInLimit }, async (request, reply) => {
    const query = request.query as Record<string, unknown>;
    const { url, pending } = await signIn.start({ reauth: text(query.reauth) === '1', returnTo: localPath(text(query.return), '/passwords') });
    const id = await sessions.startSignIn(pending);
    reply.setCookie(cookies.signIn, id, { ...cookieOptions, maxAge: 600 });
    return reply.header('cache-control', 'no-store').redirect(url, 303);
  });

  app.get('/auth/callback', { config: signInLimit }, async (request, reply) => {
    const pending = await sessions.takeSignIn(request.cookies[cookies.signIn]);
    reply.clearCookie(cookies.signIn, cookieOptions);
    const refuse = (status: number, message: string) =>
      sendPage(request, reply, 'Sign-in failed', html`<div class="signin"><div class="card"><h1>Sign-in failed</h1><p>${message}</p><p><a class="button primary" href="/auth/login">Try again</a></p></div></div>`, { status });
    if (pending === null) {
      ctx.metrics.signIn('failed');
      return refuse(400, 'This sign-in has expired or was already used. Start again.');
    }
    const query = request.query as Record<string, unknown>;
    if (typeof query.error === 'string') {
      log.warn({ ip: request.ip, error: query.error }, 'portal sign-in refused by the provider');
      ctx.metrics.signIn('failed');
      return refuse(403, 'The sign-in was cancelled or refused by your account provider.');
    }
    let claims: Record<string, unknown>;
    try {
      claims = await signIn.finish(new URL(request.url, `${ctx.config.public_url}/`), pending);
    } catch (error) {
      log.warn({ ip: request.ip, cause: (error as Error).message }, 'portal sign-in failed');
      ctx.metrics.signIn('failed');
      return refuse(400, 'The answer from your account provider could not be verified. Start again.');
    }
    const outcome = identityFromClaims(claims, ctx.rules, Math.floor(ctx.clock() / 1000));
    if (!outcome.ok) {
      log.warn({ ip: request.ip, username: outcome.username, reason: outcome.reason }, 'portal sign-in refused');
      ctx.metrics.signIn(outcome.reason);
      // The provider no longer vouches for this person here: end the sessions they still hold.
      if (outcome.username !== null && outcome.reason === 'not-allowed') await sessions.destroyAllFor(outcome.username, null);
      return refuse(403, SIGN_IN_REFUSALS[outcome.reason]);
    }
    if (request.portal !== null) await sessions.destroy(request.portal.id);
    const id = await sessions.create(outcome.identity);
    reply.setCookie(cookies.session, id, cookieOptions);
    log.info({ ip: request.ip, username: outcome.identity.username, role: outcome.identity.role, reauth: pending.maxAge !== null }, 'portal sign-in');
    ctx.metrics.signIn('ok');
    const { identity } = outcome;
    const agent = request.headers['user-agent'];
    const actor = { role: identity.role, id: identity.username, mailboxes: identity.mailboxes, ip: request.ip, userAgent: typeof agent === 'string' ? agent : null };
    await ctx.admin.signInLog
      .recordPortalSignIn(actor, { mfa: identity.amr.includes('mfa'), reauthenticated: pending.maxAge !== null })
      .catch((error: Error) => log.warn({ username: identity.username, cause: error.message }, 'portal sign-in not recorded in the sign-in log'));
    return reply.redirect(pending.returnTo, 303);
  });

  // Signed out already (the session ended): nothing to protect, so no token is asked for.
  const signedIn = (request: FastifyRequest, reply: FastifyReply, done: () => void) =>
    request.portal === null ? void reply.redirect('/', 303) : app.csrfProtection(request, reply, done);
  app.post('/auth/logout', { preHandler: signedIn }, async (request: FastifyRequest, reply: FastifyReply) => {
    await sessions.destroy(request.portal!.id);
    log.info({ ip: request.ip, username: request.portal!.session.username }, 'portal sign-out');
    reply.clearCookie(cookies.session, cookieOptions);
    return reply.redirect('/', 303);
  });
}
