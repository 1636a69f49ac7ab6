import type { StoredTokenState } from '../core/token-state-store.js';
import type { ProviderFailure } from './oauth-error-classifier.js';

/*
 * The token state a key moves to on each event, as pure functions: tokens arrive already sealed, and the token
 * provider decides when (and with which compare-and-set) each state is written.
 */

/** The provider issued a token: ok, failures forgotten. */
export function grantedState(
  key: string,
  sealed: { refresh: string | null; access: string | null },
  obtainedAt: number,
  expiresAt: number,
): StoredTokenState {
  return {
    key,
    sealedRefreshToken: sealed.refresh,
    sealedAccessToken: sealed.access,
    accessExpiresAt: expiresAt,
    accessObtainedAt: obtainedAt,
    status: 'ok',
    lastSuccessAt: obtainedAt,
    failingSince: null,
    failures: 0,
    nextAttemptAt: null,
    lastError: null,
    updatedAt: obtainedAt,
  };
}

/** An operator stored a refresh token (`oauth connect`, `oauth import`): ok, no access token yet. */
export function connectedState(key: string, sealedRefreshToken: string, now: number): StoredTokenState {
  return { ...grantedState(key, { refresh: sealedRefreshToken, access: null }, now, now), accessExpiresAt: null, accessObtainedAt: null };
}

/** The provider's failure as one line for the state and the audit log (AADSTS code first, description capped). */
export function describeFailure(failure: ProviderFailure): string {
  return `${failure.code}${failure.aadsts ? ` ${failure.aadsts}` : ''}: ${failure.description.slice(0, 300)}`;
}

/**
 * A request failed. A lost grant drops the refresh token and waits for `oauth connect`; anything else keeps it and
 * is retried at `nextAttemptAt` (the caller's jittered exponential backoff).
 */
export function failedState(key: string, state: StoredTokenState | null, failure: ProviderFailure, now: number, nextAttemptAt: number): StoredTokenState {
  const lost = failure.kind === 'grant-lost';
  return {
    key,
    sealedRefreshToken: lost ? null : (state?.sealedRefreshToken ?? null),
    sealedAccessToken: state?.sealedAccessToken ?? null,
    accessExpiresAt: state?.accessExpiresAt ?? null,
    accessObtainedAt: state?.accessObtainedAt ?? null,
    status: lost ? 'needs-connect' : 'failing',
    lastSuccessAt: state?.lastSuccessAt ?? null,
    failingSince: state?.failingSince ?? now,
    failures: (state?.failures ?? 0) + 1,
    nextAttemptAt: lost ? null : nextAttemptAt,
    lastError: describeFailure(failure),
    updatedAt: now,
  };
}

/** The upstream refused the stored access token: forget it, keep everything else. */
export function withoutAccessToken(state: StoredTokenState, now: number): StoredTokenState {
  return { ...state, sealedAccessToken: null, accessExpiresAt: null, accessObtainedAt: null, updatedAt: now };
}

/** Jittered exponential backoff: 50–100% of min(max, base · 2^(failures−1)), so instances do not retry in step. */
export function backoffMs(failures: number, baseMs: number, maxMs: number, random: () => number = Math.random): number {
  const ceiling = Math.min(maxMs, baseMs * 2 ** Math.max(0, failures - 1));
  return Math.round(ceiling * (0.5 + random() * 0.5));
}
