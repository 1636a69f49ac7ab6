import { createHmac, randomInt } from 'node:crypto';
import { normalizeUsername, type AppPasswordRecord, type MessagePolicy } from './app-password-record.js';
import type { AppPasswordVerifier } from './app-password-verifier.js';
import type { AuditEvent, AuditLog, AuditReason } from './audit-log.js';
import type { AuthMetrics } from './auth-metrics.js';
import type { Clock } from './clock.js';
import type { EventLogger } from './event-logger.js';
import { isGatewayError } from './gateway-error.js';
import type { LimitVerdict, LoginAttemptKey, LoginLimiter } from './login-limiter.js';
import { KeyedConcurrency } from './keyed-concurrency.js';
import { canonicalIp, limitingAddress, NetworkList } from './network-list.js';
import { upstreamFailure, UPSTREAM_AUDIT_REASONS, type UpstreamAuditReason, type UpstreamError } from './ports/upstream-failure.js';
import type { Protocol } from './protocol.js';

export interface AuthRequest {
  username: string;
  password: string;
  protocol: Protocol;
  clientIp: string;
  /** The connection is TLS-protected (listeners refuse plaintext AUTH except on listed networks). */
  secure: boolean;
  /** The listener's session id, for log correlation. */
  sessionId?: string;
}

/** Reasons the authenticator itself decides; upstream-* reasons are decided after it, by the listeners. */
export type AuthFailureReason = Extract<
  AuditReason,
  'invalid-credentials' | 'revoked' | 'expired' | 'disabled' | 'scope-denied' | 'network-denied' | 'rate-limited' | 'user-locked' | 'unavailable'
>;

export type AuthOutcome =
  | { ok: true; reason: 'ok'; username: string; mailbox: string; appPasswordId: string; appPasswordName: string; policy: MessagePolicy }
  | {
      ok: false;
      reason: AuthFailureReason;
      /** The client should retry later (limits, outages) rather than treat its password as wrong. */
      temporary: boolean;
      /** How long the listener waits before answering this failure (slows guessing on one connection). */
      delayMs: number;
    };

export type AcceptedOutcome = Extract<AuthOutcome, { ok: true }>;
type Refusal = Extract<AuthOutcome, { ok: false }>;

/** One login attempt through the upstream (Authenticator.login): the upstream's session, or why not. */
export type LoginOutcome<T> =
  | (AcceptedOutcome & { session: T })
  | Refusal
  /** The app password was right, but the mailbox could not be opened upstream: the failure in the one vocabulary. */
  | { ok: false; reason: UpstreamAuditReason; temporary: boolean; delayMs: 0; upstream: UpstreamError };

/** Verified and allowed, not yet recorded: what the attempt's one record needs once its outcome is known. */
interface Pending {
  base: { protocol: Protocol; username: string; clientIp: string; sessionId: string | undefined };
  record: AppPasswordRecord;
  detail: string;
  cached: boolean;
}

export interface AuthenticatorOptions {
  trustedNetworks: readonly string[];
  /** Verifications at once from one limiting address (per instance); one (user, address) pair runs one at a time. */
  parallelPerIp: number;
  failureDelayMs: number;
  failureDelayJitterMs: number;
}

export interface AuthenticatorDeps {
  verifier: AppPasswordVerifier;
  limiter: LoginLimiter;
  audit: AuditLog;
  metrics: AuthMetrics;
  log: EventLogger;
  clock: Clock;
  /** Key of the wrong-password fingerprint (distinct-failure counting); derived from the pepper. */
  fingerprintKey: Buffer;
  /** Called after a successful login is recorded (e.g. last-use bookkeeping); failures are logged, not fatal. */
  recordUse: (record: AppPasswordRecord, clientIp: string, protocol: Protocol) => Promise<void>;
}

const TEMPORARY: ReadonlySet<AuthFailureReason> = new Set(['rate-limited', 'user-locked', 'unavailable']);

/**
 * The one authenticator for every protocol. Order: rate-limit gate → find and verify (at most one argon2)
 * → policy (revoked, expired, scope, allowed networks) → record success or failure → audit and metrics.
 * It knows nothing of sockets or protocol text; it returns an outcome value, never throws for an expected case.
 */
export class Authenticator {
  private readonly trusted: NetworkList;
  private readonly inFlight = new KeyedConcurrency();

  constructor(
    private readonly deps: AuthenticatorDeps,
    private readonly options: AuthenticatorOptions,
  ) {
    this.trusted = new NetworkList(options.trustedNetworks);
  }

  /** Verifies and records the outcome at once: for a caller with no upstream to open (or one that opens it later). */
  async authenticate(request: AuthRequest): Promise<AuthOutcome> {
    const outcome = await this.gate(request);
    if (outcome.ok) await this.accepted(outcome.pending);
    return outcome.ok ? outcome.accepted : outcome;
  }

  /**
   * One login attempt end to end: verify the app password, then `open` the mailbox upstream, then record exactly
   * one outcome — one audit record, one count, one log line, and the last use only when the device got in. What
   * `open` throws is an upstream failure (core/ports/upstream-failure.ts) and becomes the attempt's outcome.
   */
  async login<T>(request: AuthRequest, open: (accepted: AcceptedOutcome) => Promise<T>): Promise<LoginOutcome<T>> {
    const outcome = await this.gate(request);
    if (!outcome.ok) return outcome;
    const { accepted, pending } = outcome;
    let session: T;
    try {
      session = await open(accepted);
    } catch (error) {
      const failure = upstreamFailure(error);
      const reason = UPSTREAM_AUDIT_REASONS[failure.kind];
      await this.upstreamFailed({ ...pending.base, appPasswordId: accepted.appPasswordId, appPasswordName: accepted.appPasswordName, reason, detail: failure.message });
      return { ok: false, reason, temporary: failure.temporary, delayMs: 0, upstream: failure };
    }
    await this.accepted(pending);
    return { ...accepted, session };
  }

  private async gate(request: AuthRequest): Promise<Refusal | { ok: true; accepted: AcceptedOutcome; pending: Pending }> {
    const username = normalizeUsername(request.username).slice(0, 320);
    const clientIp = canonicalIp(request.clientIp);
    const ip = limitingAddress(clientIp);
    const key: LoginAttemptKey = { username, ip, trusted: this.trusted.contains(clientIp) };
    // Attempts of one pair run one after another, so each gate check sees the failures recorded before it;
    // one address gets a few verifications at once (an office behind NAT), never the whole argon2 pool.
    return this.inFlight.run(`pair\0${username}\0${ip}`, 1, () =>
      this.inFlight.run(`ip\0${ip}`, this.options.parallelPerIp, () => this.decide(request, username, clientIp, key)),
    );
  }

  private async decide(request: AuthRequest, username: string, clientIp: string, key: LoginAttemptKey): Promise<Refusal | { ok: true; accepted: AcceptedOutcome; pending: Pending }> {
    const base = { protocol: request.protocol, username, clientIp, sessionId: request.sessionId };

    const gate = await this.deps.limiter.check(key);
    if (gate.blocked) {
      this.deps.metrics.rateLimitBlock(gate.scope);
      return this.fail(base, gate.scope === 'user' ? 'user-locked' : 'rate-limited', null, `${gate.scope} blocked for ${Math.ceil(gate.retryAfterMs / 1000)} s`);
    }

    let verified;
    try {
      verified = await this.deps.verifier.verify(username, request.password);
    } catch (error) {
      if (!isGatewayError(error)) throw error;
      this.deps.log.warn({ ...base, code: error.code, cause: error.message }, 'credential verification unavailable');
      return this.fail(base, 'unavailable', null, error.code);
    }

    if (!verified.ok) {
      if (verified.reason === 'invalid-credentials') {
        const next = await this.deps.limiter.recordFailure(key, this.fingerprint(username, this.deps.verifier.canonical(request.password)));
        // Issue 18: a password that cannot be an app password is most often the account's own password; the log
        // line and the audit detail say so (never what was typed), so the admin can point the user to the app password.
        const looksLike = this.deps.verifier.looksLike(request.password);
        const shape = looksLike === 'account-password' ? 'not app-password shaped: looks like an account password' : null;
        return this.fail(base, 'invalid-credentials', null, [shape, this.describeTrip(next)].filter(Boolean).join('; ') || null, { looksLike });
      }
      // Any other refusal of the verifier carries a record: the password was right (revoked, expired, ...).
      return this.refuseRightPassword(base, key, request.password, verified.cached, verified.reason, verified.record, null);
    }

    const record = verified.record;
    this.deps.metrics.credentialCache(verified.cached);
    if (!record.scopes.includes(request.protocol)) {
      return this.refuseRightPassword(base, key, request.password, verified.cached, 'scope-denied', record, `allowed: ${record.scopes.join(',')}`);
    }
    if (record.allowedNetworks.length > 0 && !new NetworkList(record.allowedNetworks).contains(clientIp)) {
      return this.refuseRightPassword(base, key, request.password, verified.cached, 'network-denied', record, `allowed: ${record.allowedNetworks.join(',')}`);
    }

    // The password was right: the brute-force counters let go whatever the upstream says next.
    await this.deps.limiter.recordSuccess(key);
    const accepted: AcceptedOutcome = {
      ok: true,
      reason: 'ok',
      username,
      mailbox: record.mailbox,
      appPasswordId: record.id,
      appPasswordName: record.name,
      policy: record.policy,
    };
    return { ok: true, accepted, pending: { base, record, detail: `${request.secure ? 'tls' : 'plaintext'}${verified.cached ? ', cached' : ''}`, cached: verified.cached } };
  }

  /** The attempt succeeded (the device got in): last use, the `ok` record, the count, the log line. */
  private async accepted({ base, record, detail, cached }: Pending): Promise<void> {
    try {
      await this.deps.recordUse(record, base.clientIp, base.protocol);
    } catch (error) {
      this.deps.log.warn({ ...base, appPasswordId: record.id, cause: (error as Error).message }, 'last-use update failed');
    }
    await this.audit(base, 'ok', record, detail);
    this.deps.metrics.attempt(base.protocol, 'ok');
    this.deps.log.info({ ...base, appPasswordId: record.id, cached }, 'login accepted');
  }

  /**
   * After an accepted app password, the listener could not open the mailbox upstream: the token was not to be
   * had, the upstream refused it, or the upstream was unreachable. Audited and counted as that attempt's outcome.
   */
  async upstreamFailed(event: {
    protocol: Protocol;
    username: string;
    clientIp: string;
    appPasswordId: string;
    appPasswordName: string;
    reason: Extract<AuditReason, 'upstream-token-failed' | 'upstream-rejected' | 'unavailable'>;
    detail: string;
    sessionId?: string | undefined;
  }): Promise<void> {
    const base = { protocol: event.protocol, username: event.username, clientIp: canonicalIp(event.clientIp) };
    this.deps.log.warn({ ...base, sessionId: event.sessionId, appPasswordId: event.appPasswordId, reason: event.reason, detail: event.detail }, 'upstream login failed');
    this.deps.metrics.attempt(event.protocol, event.reason);
    await this.audit(base, event.reason, { id: event.appPasswordId, name: event.appPasswordName } as AppPasswordRecord, event.detail.slice(0, 500));
  }

  /**
   * No right-password oracle (core/right-password-refusal.ts): a right password refused (revoked, expired, turned
   * off, scope, network) is answered, delayed, costed and counted exactly as a wrong one: the same reply (the reply
   * tables), the same failure delay, one argon2 verification even when the cache knew it, and a failure recorded
   * with the fingerprint of what was typed. The limiter counts a repeated (user, address, password) failure once
   * (login-limiter.ts), for right and wrong passwords alike, so a forgotten revoked device repeating its password
   * never blocks the user's working devices on the same address, and repeating a guess tells nothing.
   */
  private async refuseRightPassword(
    base: { protocol: Protocol; username: string; clientIp: string; sessionId: string | undefined },
    key: LoginAttemptKey,
    password: string,
    cached: boolean,
    reason: AuthFailureReason,
    record: AppPasswordRecord,
    detail: string | null,
  ): Promise<Refusal> {
    if (cached) await this.deps.verifier.spendLikeAWrongPassword(password);
    const next = await this.deps.limiter.recordFailure(key, this.fingerprint(base.username, this.deps.verifier.canonical(password)));
    const trip = this.describeTrip(next);
    return this.fail(base, reason, record, trip === null ? detail : [detail, trip].filter(Boolean).join('; '));
  }

  /** A keyed hash of a wrong password: the same stale password repeated counts once towards the user lock. */
  private fingerprint(username: string, password: string): string {
    return createHmac('sha256', this.deps.fingerprintKey).update(`${username}\0${password}`).digest('base64url').slice(0, 22);
  }

  private describeTrip(next: LimitVerdict): string | null {
    if (!next.blocked) return null;
    this.deps.metrics.rateLimitBlock(next.scope);
    this.deps.log.warn({ scope: next.scope, retryAfterMs: next.retryAfterMs }, 'brute-force limit reached');
    return `this failure tripped the ${next.scope} limit`;
  }

  private async fail(
    base: { protocol: Protocol; username: string; clientIp: string; sessionId: string | undefined },
    reason: AuthFailureReason,
    record: AppPasswordRecord | null,
    detail: string | null,
    fields: { looksLike?: 'app-password' | 'account-password' } = {},
  ): Promise<Refusal> {
    await this.audit(base, reason, record, detail);
    this.deps.metrics.attempt(base.protocol, reason);
    this.deps.log.warn({ ...base, reason, appPasswordId: record?.id, detail, ...fields }, 'login refused');
    const { failureDelayMs, failureDelayJitterMs } = this.options;
    return {
      ok: false,
      reason,
      temporary: TEMPORARY.has(reason),
      delayMs: failureDelayMs + (failureDelayJitterMs > 0 ? randomInt(failureDelayJitterMs + 1) : 0),
    };
  }

  private async audit(
    base: { protocol: Protocol; username: string; clientIp: string },
    reason: AuditReason,
    record: AppPasswordRecord | null,
    detail: string | null,
  ): Promise<void> {
    const event: AuditEvent = {
      at: this.deps.clock(),
      action: 'login',
      protocol: base.protocol,
      username: base.username,
      clientIp: base.clientIp,
      appPasswordId: record?.id ?? null,
      appPasswordName: record?.name ?? null,
      reason,
      detail,
    };
    try {
      await this.deps.audit.append(event);
    } catch (error) {
      // Availability over bookkeeping: the decision stands; the lost record is logged loudly instead.
      this.deps.log.error({ ...event, cause: (error as Error).message }, 'audit append failed');
    }
  }
}
