import type { App } from '../app.js';
import type { AccessToken, TokenStatus } from '../core/token-provider.js';
import { classifyOAuthError } from '../oauth/oauth-error-classifier.js';
import { fail, pass, skip, warn, type CheckResult } from './doctor-report.js';
import { explainedFailure } from './microsoft-failures.js';
import { readTokenClaims } from './token-claims.js';

/** At most this many connected mailboxes are listed when no --mailbox is given. */
const MAX_MAILBOXES = 20;

export interface TokenCheckOutcome {
  results: CheckResult[];
  /** The token for `mailbox` when one was asked for and obtained. */
  token: AccessToken | null;
}

/**
 * A failed token request: the detail names the URL asked and the answer's first line; the provider's whole answer
 * (Microsoft's descriptions run over several lines: trace and correlation ids) is shown under the hint.
 */
function refused(name: string, text: string, mailbox: string | null, tokenEndpoint: string, body: string | null = null): CheckResult {
  const firstLine = text.split(/\r?\n/)[0]!.slice(0, 400);
  const answer = [text, body].filter((t) => t).join('\n');
  const fallback = 'The provider refused the request (its answer is below); passgate oauth status shows the stored state.';
  return explainedFailure(name, 'token', `no token from ${tokenEndpoint}: ${firstLine}`, text, fallback, { mailbox, tokenEndpoint, answer });
}

/**
 * The body of a non-OAuth answer (a proxy's or a load balancer's error page, HTTP 5xx): openid-client keeps the
 * Response as the error's cause, unread. Tags are dropped and the text shortened: enough to tell whose page it is.
 */
async function answerBody(error: unknown): Promise<string | null> {
  const response = (error as { cause?: unknown }).cause;
  if (!(response instanceof Response) || response.bodyUsed) return null;
  try {
    const text = (await response.text()).replace(/<[^>]*>/g, ' ').replace(/\s+/g, ' ').trim();
    return text ? `HTTP ${response.status}: ${text.slice(0, 300)}` : `HTTP ${response.status} with an empty body`;
  } catch {
    return null;
  }
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
    ...(config.pop3.enabled ? [config.oauth.mode === 'app' ? 'POP.AccessAsApp' : 'POP.AccessAsUser.All'] : []),
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
 * tested). Delegated mode: with --mailbox, that mailbox's token through the token provider (the stored access
 * token while valid, else its refresh token redeemed and the rotated one stored); without, the stored state of
 * each connected mailbox. The token is never printed.
 */
export async function checkTokens(app: App, mailbox: string | null): Promise<TokenCheckOutcome> {
  const oauth = app.oauth!;
  const endpoint = oauth.client.tokenEndpoint.href;
  if (app.config.oauth.mode === 'app') {
    try {
      const grant = await oauth.client.clientCredentials();
      const token = { token: grant.accessToken, expiresAt: app.clock() + grant.expiresInSeconds * 1000 };
      return { results: [describe(app, 'token', token)], token };
    } catch (error) {
      const f = classifyOAuthError(error);
      const text = `${f.code}${f.aadsts && !f.description.includes(f.aadsts) ? ` ${f.aadsts}` : ''}: ${f.description}`;
      return { results: [refused('token', text, mailbox, endpoint, await answerBody(error))], token: null };
    }
  }

  if (mailbox === null) return { results: await connectedMailboxes(app), token: null };
  if (!app.config.redisEnabled) {
    const stored = await withoutRedeeming(app, mailbox);
    if (stored) return stored;
  }
  try {
    const token = await oauth.tokens.getAccessToken(mailbox);
    return { results: [describe(app, `token ${mailbox}`, token)], token };
  } catch (error) {
    return { results: [refused(`token ${mailbox}`, (error as Error).message, mailbox, endpoint)], token: null };
  }
}

/**
 * The embedded store is opened read-only (doctor never changes it: a running `serve` may be another version), so
 * a refresh token is never redeemed there: the provider may rotate it, and the rotated one could not be stored.
 * A stored access token still outside the refresh margin is opened here, straight from the store, never through
 * the token provider (which would redeem the refresh token if the access token expired in between). Returns the
 * outcome, or null when there is nothing to redeem (no state, or it needs a connect): the provider then fails with
 * its own message before asking anyone.
 */
async function withoutRedeeming(app: App, mailbox: string): Promise<TokenCheckOutcome | null> {
  const name = `token ${mailbox}`;
  const only = (result: CheckResult): TokenCheckOutcome => ({ results: [result], token: null });
  const key = app.oauth!.tokens.keyFor(mailbox);
  let state;
  try {
    state = await app.tokenStates.get(key);
  } catch (error) {
    return only(fail(name, `cannot read the stored token state: ${(error as Error).message}`));
  }
  if (!state || state.status === 'needs-connect') return null;
  const marginMs = app.config.oauth.refresh_margin_seconds * 1000;
  const expiresAt = state.accessExpiresAt;
  if (expiresAt !== null && state.sealedAccessToken !== null && app.tokenCipher && app.clock() < expiresAt - marginMs) {
    try {
      const token: AccessToken = { token: app.tokenCipher.open(state.sealedAccessToken, key), expiresAt, cached: true };
      return { results: [describe(app, name, token)], token };
    } catch (error) {
      return only(fail(name, `the stored access token does not open: ${(error as Error).message}`, 'Check oauth.token_encryption_key: it must be the key passgate serve uses.'));
    }
  }
  const status = (await app.oauth!.tokens.status()).find((s) => s.key === key);
  if (status?.state === 'failing') return only(storedState(status, 'passgate serve retries it with backoff; on the embedded store doctor reads the stored state only.'));
  const access = expiresAt === null ? 'no access token stored yet' : `the stored access token is due for refresh (valid until ${time(expiresAt)})`;
  return only(
    warn(
      name,
      `connected, but ${access}; doctor opens the embedded store read-only and does not redeem the refresh token`,
      'passgate serve redeems it at the mailbox\'s next login and stores the rotated refresh token. After a login through passgate, doctor --mailbox uses that fresh token to test the upstream logins.',
    ),
  );
}

const time = (ms: number | null) => (ms === null ? 'never' : `${new Date(ms).toISOString().slice(0, 16).replace('T', ' ')}Z`);

/** One connected mailbox's stored state, as read (no provider asked). */
function storedState(s: TokenStatus, fallbackHint = `Run passgate doctor --mailbox ${s.mailbox} to try it now.`): CheckResult {
  const name = `token ${s.mailbox}`;
  if (s.state === 'ok') return pass(name, `connected; last token ${time(s.lastSuccessAt)}, access token valid until ${time(s.accessExpiresAt)}`);
  if (s.state === 'unknown') return skip(name, 'no token requested yet');
  const text = s.state === 'needs-connect' ? `needs \`passgate oauth connect\`: ${s.lastError ?? 'no usable refresh token'}` : (s.lastError ?? 'failing');
  const result = explainedFailure(name, 'token', `${s.state} since ${time(s.failingSince)}: ${text.split(/\r?\n/)[0]!.slice(0, 300)}`, text, fallbackHint, { mailbox: s.mailbox, answer: text });
  // A provider that is down or slow is retried with backoff by serve: worth a warning, not a failure.
  return result.failure === 'token-unreachable' ? { ...result, status: 'warn' } : result;
}

/**
 * Delegated mode without --mailbox: each connected mailbox's stored state, read only. Redeeming every refresh
 * token would rotate them all from a process that exits at once, racing a running `serve` on the embedded store
 * (whose refresh lock is per process); --mailbox redeems one, deliberately.
 */
async function connectedMailboxes(app: App): Promise<CheckResult[]> {
  let statuses;
  try {
    statuses = (await app.oauth!.tokens.status()).filter((s) => s.mailbox !== null);
  } catch (error) {
    return [fail('token', `cannot read the connected mailboxes: ${(error as Error).message}`)];
  }
  if (statuses.length === 0) {
    return [warn('token', 'delegated mode: no mailbox connected yet', 'Connect each mailbox once: passgate oauth connect --mailbox user@example.com')];
  }
  const results = statuses.slice(0, MAX_MAILBOXES).map((s) => storedState(s));
  if (statuses.length > MAX_MAILBOXES) {
    results.push(warn('token', `showed ${MAX_MAILBOXES} of ${statuses.length} connected mailboxes`, 'passgate oauth status lists them all.'));
  }
  return results;
}
