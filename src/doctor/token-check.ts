import type { App } from '../app.js';
import type { AccessToken } from '../core/token-provider.js';
import { classifyOAuthError } from '../oauth/oauth-error-classifier.js';
import { fail, pass, warn, type CheckResult } from './doctor-report.js';
import { explainedFailure } from './microsoft-failures.js';
import { readTokenClaims } from './token-claims.js';

/** At most this many connected mailboxes get a token when no --mailbox is given (each is one provider request). */
const MAX_MAILBOXES = 20;

export interface TokenCheckOutcome {
  results: CheckResult[];
  /** The token for `mailbox` when one was asked for and obtained. */
  token: AccessToken | null;
}

function refused(name: string, text: string): CheckResult {
  return explainedFailure(name, 'token', `no token: ${text.slice(0, 400)}`, text, 'Read the provider\'s answer above; passgate oauth status shows the stored state.');
}

function minutes(expiresAt: number, now: number): string {
  return `valid for ${Math.max(0, Math.round((expiresAt - now) / 60_000))} min`;
}

/**
 * What the token says it may do, and what is missing for the enabled protocols (Microsoft: app-only tokens carry
 * `roles`, delegated ones `scp`; Microsoft Learn, "Authenticate an IMAP, POP or SMTP connection using OAuth").
 */
function describe(app: App, name: string, token: AccessToken): CheckResult {
  const { config } = app;
  const now = app.clock();
  const claims = readTokenClaims(token.token);
  const base = `${minutes(token.expiresAt, now)}`;
  if (!claims) return pass(name, `${base} (an opaque token: no claims to show)`);
  const granted = config.oauth.mode === 'app' ? claims.roles : claims.scopes;
  const detail = `${base}, audience ${claims.audience ?? '(none)'}, ${config.oauth.mode === 'app' ? 'roles' : 'scopes'}: ${granted.join(' ') || '(none)'}`;
  if (config.oauth.provider !== 'microsoft') return pass(name, detail);
  const needed = [
    ...(config.smtp.enabled ? [config.oauth.mode === 'app' ? 'SMTP.SendAsApp' : 'SMTP.Send'] : []),
    ...(config.imap.enabled ? [config.oauth.mode === 'app' ? 'IMAP.AccessAsApp' : 'IMAP.AccessAsUser.All'] : []),
  ];
  const missing = needed.filter((p) => !granted.includes(p));
  if (missing.length === 0) return pass(name, detail);
  return warn(
    name,
    `${detail}; missing ${missing.join(', ')}`,
    config.oauth.mode === 'app'
      ? `Add the Office 365 Exchange Online application permission ${missing.join(', ')} to the app and grant admin consent; Exchange refuses logins without it.`
      : `The mailbox consented without ${missing.join(', ')}: check oauth.scopes, then run passgate oauth connect again.`,
  );
}

/**
 * App mode: a fresh client-credentials request (never the cached token, so the credentials themselves are
 * tested). Delegated mode: the mailbox's token through the token provider, which redeems and rotates the stored
 * refresh token; without --mailbox, every connected mailbox (up to MAX_MAILBOXES). The token is never printed.
 */
export async function checkTokens(app: App, mailbox: string | null): Promise<TokenCheckOutcome> {
  const oauth = app.oauth!;
  if (app.config.oauth.mode === 'app') {
    try {
      const grant = await oauth.client.clientCredentials();
      const token = { token: grant.accessToken, expiresAt: app.clock() + grant.expiresInSeconds * 1000 };
      return { results: [describe(app, 'token', token)], token };
    } catch (error) {
      const f = classifyOAuthError(error);
      return { results: [refused('token', `${f.code}${f.aadsts && !f.description.includes(f.aadsts) ? ` ${f.aadsts}` : ''}: ${f.description}`)], token: null };
    }
  }

  let mailboxes: string[];
  if (mailbox !== null) mailboxes = [mailbox];
  else {
    try {
      mailboxes = (await oauth.tokens.status()).flatMap((s) => (s.mailbox ? [s.mailbox] : []));
    } catch (error) {
      return { results: [fail('token', `cannot read the connected mailboxes: ${(error as Error).message}`)], token: null };
    }
    if (mailboxes.length === 0) {
      return { results: [warn('token', 'delegated mode: no mailbox connected yet', 'Connect each mailbox once: passgate oauth connect --mailbox user@example.com')], token: null };
    }
  }
  const results: CheckResult[] = [];
  let token: AccessToken | null = null;
  for (const m of mailboxes.slice(0, MAX_MAILBOXES)) {
    try {
      const t = await oauth.tokens.getAccessToken(m);
      results.push(describe(app, `token ${m}`, t));
      if (m === mailbox) token = t;
    } catch (error) {
      results.push(refused(`token ${m}`, (error as Error).message));
    }
  }
  if (mailboxes.length > MAX_MAILBOXES) {
    results.push(warn('token', `checked ${MAX_MAILBOXES} of ${mailboxes.length} connected mailboxes`, 'Check one with passgate doctor --mailbox <address>; passgate oauth status lists them all.'));
  }
  return { results, token };
}
