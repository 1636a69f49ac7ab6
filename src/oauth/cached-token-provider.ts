import type { AuditLog } from '../core/audit-log.js';
import type { Clock } from '../core/clock.js';
import type { EventLogger } from '../core/event-logger.js';
import type { TokenMetrics } from '../core/token-metrics.js';
import { EXCHANGE_ONLINE_AUDIENCE, TokenError, type AccessToken, type TokenInvalidationReason, type TokenProvider, type TokenStatus } from '../core/token-provider.js';
import type { StoredTokenState, TokenStateStore } from '../core/token-state-store.js';
import { classifyOAuthError, type ProviderFailure } from './oauth-error-classifier.js';
import type { TokenGrant } from './oauth-client.js';
import type { TokenCipher } from './token-cipher.js';
import { backoffMs, connectedState, failedState, grantedState, withoutAccessToken } from './token-state-transitions.js';

/** Where grants come from (OAuthClient in production), for an audience (the resource the token is for). */
export interface TokenSource {
  clientCredentials(audience: string): Promise<TokenGrant>;
  refresh(refreshToken: string, audience: string): Promise<TokenGrant>;
}

export interface CachedTokenProviderOptions {
  mode: 'app' | 'delegated';
  marginMs: number;
  retryBaseMs: number;
  retryMaxMs: number;
  /** How long a refresh may hold the cross-instance lock. */
  lockTtlMs: number;
  /** How long to wait for another instance's refresh before answering "temporary". */
  peerWaitMs: number;
  /** At most one forced refresh (a cached token the upstream refused) per key in this window. */
  forcedRefreshIntervalMs: number;
  /**
   * Delegated mode: audiences besides the default one that a connected mailbox's refresh token is stored for too
   * (Graph, when a mailbox goes through the Graph transport), each under its own key, so `oauth connect` once is
   * enough. Entra's refresh tokens serve every resource the app was consented for, and stay valid after use.
   */
  connectAudiences?: readonly string[];
}

export interface CachedTokenProviderDeps {
  source: TokenSource;
  store: TokenStateStore;
  /** null: access tokens stay in this process's memory (app mode on the embedded store only). */
  cipher: TokenCipher | null;
  audit: AuditLog;
  metrics: TokenMetrics;
  log: EventLogger;
  clock: Clock;
}

interface Held {
  token: string;
  expiresAt: number;
  obtainedAt: number;
  mailbox: string;
  audience: string;
  /** Used since obtained: only tokens in use are refreshed ahead in the background. */
  used: boolean;
  timer: NodeJS.Timeout | null;
}

/** Fraction of a token's usable life after which it is refreshed in the background. */
const REFRESH_AHEAD = 0.75;
const PEER_POLL_MS = 100;

/**
 * The key of a token: `app` or `mailbox:<address>` for the default audience (EXCHANGE_ONLINE_AUDIENCE), so token
 * state stored before audiences existed keeps working; `<audience>|app` or `<audience>|mailbox:<address>` for any
 * other (an audience is a URI, which holds no `|`). The cache, the stored state and the refresh lock use it.
 */
export function tokenKey(base: string, audience: string): string {
  return audience === EXCHANGE_ONLINE_AUDIENCE ? base : `${audience}|${base}`;
}

/** The audience and the base key (`app` or `mailbox:<address>`) of a token key. */
export function parseTokenKey(key: string): { audience: string; base: string } {
  if (key === 'app' || key.startsWith('mailbox:')) return { audience: EXCHANGE_ONLINE_AUDIENCE, base: key };
  const bar = key.indexOf('|');
  return { audience: key.slice(0, bar), base: key.slice(bar + 1) };
}

/**
 * Access tokens per key (tokenKey: per audience, and per mailbox in delegated mode): served from memory until expiry minus the margin,
 * refreshed in the background at 75% of that life while in use, one request in flight per key in this process
 * (single-flight) and, through the store's lock, across instances. A rotated refresh token is persisted (sealed)
 * before the access token that came with it is used. Failures are classified; temporary ones back off
 * exponentially with jitter, so the provider never sees a tight loop.
 */
export class CachedTokenProvider implements TokenProvider {
  private readonly held = new Map<string, Held>();
  private readonly inflight = new Map<string, Promise<AccessToken>>();
  /** Rotated refresh tokens not yet persisted (store failure): used first, never dropped. */
  private readonly unsavedRefresh = new Map<string, string>();
  /** When each key was last forced to refresh because the upstream refused its cached token. */
  private readonly forcedAt = new Map<string, number>();
  private closed = false;

  constructor(
    private readonly deps: CachedTokenProviderDeps,
    private readonly options: CachedTokenProviderOptions,
  ) {}

  keyFor(mailbox: string, audience: string = EXCHANGE_ONLINE_AUDIENCE): string {
    return tokenKey(this.options.mode === 'app' ? 'app' : `mailbox:${mailbox.trim().toLowerCase()}`, audience);
  }

  async getAccessToken(mailbox: string, audience: string = EXCHANGE_ONLINE_AUDIENCE): Promise<AccessToken> {
    const key = this.keyFor(mailbox, audience);
    const held = this.held.get(key);
    if (held && this.deps.clock() < held.expiresAt - this.options.marginMs) {
      held.used = true;
      this.deps.metrics.cacheHit();
      return { token: held.token, expiresAt: held.expiresAt, cached: true };
    }
    return this.singleFlight(key, () => this.obtain(key, mailbox, audience, false));
  }

  private singleFlight(key: string, work: () => Promise<AccessToken>): Promise<AccessToken> {
    let pending = this.inflight.get(key);
    if (!pending) {
      pending = work().finally(() => this.inflight.delete(key));
      this.inflight.set(key, pending);
    }
    return pending;
  }

  private refreshPoint(t: { obtainedAt: number; expiresAt: number }): number {
    return t.obtainedAt + (t.expiresAt - this.options.marginMs - t.obtainedAt) * REFRESH_AHEAD;
  }

  /** A stored access token good enough to serve (in background mode: not yet due for refresh either). */
  private usable(state: StoredTokenState | null, background: boolean): { token: string; expiresAt: number; obtainedAt: number } | null {
    if (!state?.sealedAccessToken || state.accessExpiresAt === null || !this.deps.cipher) return null;
    const now = this.deps.clock();
    const t = { expiresAt: state.accessExpiresAt, obtainedAt: state.accessObtainedAt ?? now };
    if (now >= t.expiresAt - this.options.marginMs) return null;
    if (background && now >= this.refreshPoint(t)) return null;
    return { ...t, token: this.deps.cipher.open(state.sealedAccessToken, state.key) };
  }

  private async readState(key: string): Promise<StoredTokenState | null> {
    try {
      return await this.deps.store.get(key);
    } catch (error) {
      throw new TokenError('temporary', key, `token state unavailable: ${(error as Error).message}`, { cause: error });
    }
  }

  private async obtain(key: string, mailbox: string, audience: string, background: boolean): Promise<AccessToken> {
    let state = await this.readState(key);
    const fromStore = this.usable(state, background);
    if (fromStore) return this.hold(key, mailbox, audience, fromStore, true);

    if (this.options.mode === 'delegated' && !this.unsavedRefresh.has(key) && (!state?.sealedRefreshToken || state.status === 'needs-connect')) {
      throw new TokenError('grant-lost', key, `${key} needs \`passgate oauth connect --mailbox ${mailbox}\`: no usable refresh token`);
    }
    const now = this.deps.clock();
    if (state?.nextAttemptAt && now < state.nextAttemptAt) {
      throw new TokenError('temporary', key, `${key}: backing off after ${state.failures} failures (${state.lastError}); next attempt in ${Math.ceil((state.nextAttemptAt - now) / 1000)} s`);
    }

    let release: (() => Promise<void>) | null;
    try {
      release = await this.deps.store.tryLock(key, this.options.lockTtlMs);
    } catch (error) {
      throw new TokenError('temporary', key, `token lock unavailable: ${(error as Error).message}`, { cause: error });
    }
    if (!release) return this.waitForPeer(key, mailbox, audience, background);
    try {
      // Re-read under the lock: another instance may have finished just before we took it.
      state = await this.readState(key);
      const fresh = this.usable(state, background);
      if (fresh) return this.hold(key, mailbox, audience, fresh, true);
      return await this.request(key, mailbox, audience, state);
    } finally {
      await release();
    }
  }

  private async waitForPeer(key: string, mailbox: string, audience: string, background: boolean): Promise<AccessToken> {
    const deadline = this.deps.clock() + this.options.peerWaitMs;
    while (this.deps.clock() < deadline) {
      await new Promise((r) => setTimeout(r, PEER_POLL_MS));
      const fresh = this.usable(await this.readState(key), background);
      if (fresh) return this.hold(key, mailbox, audience, fresh, true);
    }
    throw new TokenError('temporary', key, `${key}: another instance is refreshing and has not finished`);
  }

  private async request(key: string, mailbox: string, audience: string, state: StoredTokenState | null): Promise<AccessToken> {
    const { source, cipher, clock, metrics } = this.deps;
    const refreshToken =
      this.options.mode === 'app' ? null : (this.unsavedRefresh.get(key) ?? cipher!.open(state!.sealedRefreshToken!, key));
    const started = clock();
    let grant: TokenGrant;
    try {
      grant = refreshToken === null ? await source.clientCredentials(audience) : await source.refresh(refreshToken, audience);
    } catch (error) {
      const failure = classifyOAuthError(error);
      metrics.request(failure.kind, (clock() - started) / 1000);
      await this.recordFailure(key, mailbox, state, failure);
      throw new TokenError(failure.kind, key, `${key}: ${failure.kind} failure from the provider: ${failure.code}: ${failure.description}`);
    }
    metrics.request('success', (clock() - started) / 1000);
    const obtainedAt = clock();
    const expiresAt = obtainedAt + grant.expiresInSeconds * 1000;
    const newRefresh = grant.refreshToken ?? refreshToken;
    const sealed = {
      refresh: newRefresh && cipher ? cipher.seal(newRefresh, key) : null,
      access: cipher ? cipher.seal(grant.accessToken, key) : null,
    };
    const next = grantedState(key, sealed, obtainedAt, expiresAt);
    // Persist before use: once the provider rotated the refresh token, the old one is dead (email-oauth2-proxy #50).
    // Compare-and-set on the refresh token this request was based on: one an operator stored meanwhile (`oauth
    // connect` from another process) is the newer intent and stays; this access token is still good to use.
    try {
      if (!(await this.deps.store.putIf(next, 'sealedRefreshToken', state?.sealedRefreshToken ?? null))) {
        this.deps.log.warn({ key }, 'token obtained, but the grant was replaced meanwhile; the new one is kept');
      }
      this.unsavedRefresh.delete(key);
    } catch (error) {
      if (newRefresh && this.options.mode === 'delegated') this.unsavedRefresh.set(key, newRefresh);
      this.deps.log.error({ key, cause: (error as Error).message }, 'rotated refresh token not persisted; kept in memory until the store returns');
    }
    if (grant.expiresInSeconds * 1000 <= this.options.marginMs) {
      this.deps.log.warn({ key, expiresInSeconds: grant.expiresInSeconds }, 'provider issued a token shorter than the refresh margin');
    }
    return this.hold(key, mailbox, audience, { token: grant.accessToken, expiresAt, obtainedAt }, false);
  }

  private async recordFailure(key: string, mailbox: string, state: StoredTokenState | null, failure: ProviderFailure): Promise<void> {
    const now = this.deps.clock();
    const failures = (state?.failures ?? 0) + 1;
    const next = failedState(key, state, failure, now, now + backoffMs(failures, this.options.retryBaseMs, this.options.retryMaxMs));
    if (failure.kind === 'grant-lost') this.unsavedRefresh.delete(key);
    try {
      // Compare-and-set on the refresh token this request was based on: if an operator stored a new one meanwhile
      // (`oauth connect`, another process), this failure is about a grant that is already replaced, and writing it
      // would drop the new refresh token or mark a freshly connected mailbox as needing a connect.
      if (!(await this.deps.store.putIf(next, 'sealedRefreshToken', state?.sealedRefreshToken ?? null))) {
        this.deps.log.warn({ key, kind: failure.kind, code: failure.code }, 'token request failed, but the grant was replaced meanwhile; the new one is kept');
        return;
      }
    } catch (error) {
      this.deps.log.error({ key, cause: (error as Error).message }, 'token failure state not persisted');
    }
    const level = failure.kind === 'temporary' ? 'warn' : 'error';
    this.deps.log[level]({ key, kind: failure.kind, code: failure.code, aadsts: failure.aadsts, failures }, 'token request failed');
    if (failure.kind === 'grant-lost') {
      await this.deps.audit
        .append({
          at: now,
          action: 'oauth.token',
          protocol: null,
          username: this.options.mode === 'app' ? '(app)' : mailbox,
          clientIp: null,
          appPasswordId: null,
          appPasswordName: null,
          reason: 'upstream-token-failed',
          detail: `grant lost, run oauth connect: ${next.lastError}`,
        })
        .catch((error: Error) => this.deps.log.error({ key, cause: error.message }, 'audit append failed'));
    }
  }

  private hold(key: string, mailbox: string, audience: string, t: { token: string; expiresAt: number; obtainedAt: number }, cached: boolean): AccessToken {
    if (cached) this.deps.metrics.cacheHit();
    const previous = this.held.get(key);
    if (previous?.timer) clearTimeout(previous.timer);
    const held: Held = { ...t, mailbox, audience, used: false, timer: null };
    this.held.set(key, held);
    if (!this.closed) {
      const delay = Math.max(0, this.refreshPoint(t) - this.deps.clock());
      held.timer = setTimeout(() => this.refreshAhead(key, held), delay);
      held.timer.unref();
    }
    return { token: t.token, expiresAt: t.expiresAt, cached };
  }

  private refreshAhead(key: string, held: Held): void {
    held.timer = null;
    if (this.closed || this.held.get(key) !== held || !held.used) return; // idle tokens are fetched on next use
    this.singleFlight(key, () => this.obtain(key, held.mailbox, held.audience, true)).catch((error: Error) =>
      this.deps.log.warn({ key, cause: error.message }, 'background token refresh failed; the current token stays in use'),
    );
  }

  async invalidateAccessToken(mailbox: string, token: string, reason: TokenInvalidationReason, audience: string = EXCHANGE_ONLINE_AUDIENCE): Promise<boolean> {
    const { store, cipher, clock, log } = this.deps;
    const key = this.keyFor(mailbox, audience);
    const held = this.held.get(key);
    let state: StoredTokenState | null = null;
    try {
      state = await store.get(key);
    } catch (error) {
      log.warn({ key, cause: (error as Error).message }, 'token state unavailable; dropping the refused token from memory only');
    }
    let stored: boolean;
    try {
      stored = !!state?.sealedAccessToken && !!cipher && cipher.open(state.sealedAccessToken, key) === token;
    } catch {
      stored = false; // sealed under another key: not the token the upstream refused
    }
    // Already replaced (a concurrent refresh, or another login's invalidation): the caller retries with the current one.
    if (held?.token !== token && !stored) return true;
    const now = clock();
    for (const [k, at] of this.forcedAt) if (now - at >= this.options.forcedRefreshIntervalMs) this.forcedAt.delete(k);
    if (this.forcedAt.has(key)) {
      log.warn({ key, reason }, 'upstream refused a cached access token again; not forcing another refresh within the interval');
      return false;
    }
    this.forcedAt.set(key, now);
    if (held?.token === token) {
      if (held.timer) clearTimeout(held.timer);
      this.held.delete(key);
    }
    if (stored) {
      // Compare-and-set: a token another instance stored meanwhile stays.
      await store.putIf(withoutAccessToken(state!, now), 'sealedAccessToken', state!.sealedAccessToken).catch((error: Error) =>
        log.warn({ key, cause: error.message }, 'refused token not cleared from the token state store'),
      );
    }
    this.deps.metrics.invalidation(reason);
    log.warn({ key, reason }, 'upstream refused a cached access token; dropped it to fetch a fresh one');
    return true;
  }

  /** Stores a refresh token obtained by `oauth connect` or imported, replacing any state of that mailbox. */
  async saveRefreshToken(mailbox: string, refreshToken: string): Promise<string> {
    const key = this.keyFor(mailbox);
    const cipher = this.deps.cipher;
    if (!cipher) throw new TokenError('config', key, 'oauth.token_encryption_key: required to store refresh tokens');
    for (const each of this.connectedKeys(mailbox)) {
      await this.deps.store.put(connectedState(each, cipher.seal(refreshToken, each), this.deps.clock()));
      this.dropHeld(each);
    }
    return key;
  }

  /** The keys `oauth connect` fills and `oauth disconnect` empties: the default audience's, then connectAudiences'. */
  private connectedKeys(mailbox: string): string[] {
    const extra = (this.options.connectAudiences ?? []).filter((a) => a !== EXCHANGE_ONLINE_AUDIENCE);
    return [this.keyFor(mailbox), ...extra.map((audience) => this.keyFor(mailbox, audience))];
  }

  /** Drops a mailbox's tokens (`oauth disconnect`). */
  async forget(mailbox: string): Promise<void> {
    for (const key of this.connectedKeys(mailbox)) {
      await this.deps.store.delete(key);
      this.dropHeld(key);
    }
  }

  /** Forgets what this process holds for a key (after the stored state was replaced or removed). */
  private dropHeld(key: string): void {
    this.unsavedRefresh.delete(key);
    const held = this.held.get(key);
    if (held?.timer) clearTimeout(held.timer);
    this.held.delete(key);
  }

  async status(): Promise<TokenStatus[]> {
    const states = await this.deps.store.list();
    if (this.options.mode === 'app' && !states.some((s) => s.key === 'app')) {
      states.unshift({ key: 'app', status: 'unknown' } as StoredTokenState);
    }
    return states
      .map((s) => ({ s, ...parseTokenKey(s.key) }))
      .filter(({ base }) => (this.options.mode === 'app' ? base === 'app' : base.startsWith('mailbox:')))
      .map(({ s, base, audience }) => ({
        key: s.key,
        audience,
        mode: this.options.mode,
        mailbox: base.startsWith('mailbox:') ? base.slice('mailbox:'.length) : null,
        state: s.status,
        accessExpiresAt: s.accessExpiresAt ?? this.held.get(s.key)?.expiresAt ?? null,
        lastSuccessAt: s.lastSuccessAt ?? null,
        failingSince: s.failingSince ?? null,
        lastError: s.lastError ?? null,
      }));
  }

  async close(): Promise<void> {
    this.closed = true;
    for (const held of this.held.values()) if (held.timer) clearTimeout(held.timer);
    this.held.clear();
  }
}
