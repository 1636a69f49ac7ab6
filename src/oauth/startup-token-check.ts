import type { EventLogger } from '../core/event-logger.js';
import type { TokenProvider } from '../core/token-provider.js';

/**
 * `serve`'s look at its OAuth grant right after it started, so a wrong client secret or a lost consent shows up in
 * the log, in `passgate_oauth_tokens{state="failing"}` and in the body of `/readyz` at once, rather than when the
 * first device fails to log in. It never stops the start and never makes the instance unready: a provider outage
 * would be the same on every instance (docs/operations.md).
 *
 * App mode: the one app token is requested through the token provider (so it is cached for the first login, and a
 * failure is recorded in the token state like any other). Delegated mode: no provider is asked (a refresh token
 * redeemed by a process that may be about to stop could be lost); each mailbox's stored state is read, and those
 * that need attention are named.
 */
export async function checkTokenAtStart(tokens: TokenProvider, mode: 'app' | 'delegated', log: EventLogger, tokenEndpoint: string): Promise<void> {
  if (mode === 'app') {
    try {
      const token = await tokens.getAccessToken('');
      log.info({ key: 'app', validForSeconds: Math.round((token.expiresAt - Date.now()) / 1000) }, 'upstream token obtained at start');
    } catch (error) {
      const e = error as Error & { kind?: string };
      log.warn({ key: 'app', kind: e.kind ?? 'temporary', tokenEndpoint, cause: e.message }, 'upstream token unavailable at start');
    }
    return;
  }
  let statuses;
  try {
    statuses = await tokens.status();
  } catch (error) {
    log.warn({ tokenEndpoint, cause: (error as Error).message }, 'upstream token state unreadable at start');
    return;
  }
  for (const s of statuses) {
    if (s.state === 'needs-connect' || s.state === 'failing') {
      log.warn({ key: s.key, state: s.state, failingSince: s.failingSince, tokenEndpoint, cause: s.lastError }, 'upstream token unavailable at start');
    }
  }
  if (statuses.length === 0) log.warn({ tokenEndpoint }, 'no mailbox connected yet: run passgate oauth connect --mailbox <address>');
}
