import type { Actor } from '../core/actor.js';
import type { AuditEvent, AuditLog, AuditReason } from '../core/audit-log.js';
import type { Clock } from '../core/clock.js';
import type { Protocol } from '../core/protocol.js';
import type { TokenProvider, TokenStatus } from '../core/token-provider.js';
import { requireAdmin } from './lockout-admin.js';

export interface UpstreamHealth {
  protocol: Protocol;
  /** Whether passgate serves this protocol (`smtp.enabled`, `imap.enabled`). */
  enabled: boolean;
  host: string;
  port: number;
  tls: 'starttls' | 'implicit';
  /** The last login that reached the mailbox upstream, from the sign-in log. */
  lastSuccessAt: number | null;
  /** The last login the upstream side failed (token, refusal, unreachable), from the sign-in log. */
  lastFailure: { at: number; reason: AuditReason; detail: string | null } | null;
}

export interface HealthStatus {
  at: number;
  /** False when oauth.client_id is not set: no token can be had. */
  oauthConfigured: boolean;
  /** Per key (`app`, or `mailbox:<address>` in delegated mode): state, token expiry, last success and error. */
  tokens: TokenStatus[];
  upstreams: UpstreamHealth[];
}

/** Upstream failures as the listeners record them after an accepted app password. */
const UPSTREAM_FAILURES: ReadonlySet<AuditReason> = new Set(['upstream-token-failed', 'upstream-rejected', 'unavailable']);
/** How far back the sign-in log is read for the upstreams' last success and failure. */
const RECENT_EVENTS = 500;

/**
 * Admins and the operator only: token and upstream health at a glance, from what passgate already knows (the
 * token state in the store, the sign-in log): no request to the provider or the upstream per call.
 */
export class HealthAdmin {
  constructor(
    private readonly deps: {
      tokens: Pick<TokenProvider, 'status'> | null;
      audit: AuditLog;
      clock: Clock;
      upstreams: { protocol: Protocol; enabled: boolean; host: string; port: number; tls: 'starttls' | 'implicit' }[];
    },
  ) {}

  async status(actor: Actor): Promise<HealthStatus> {
    requireAdmin(actor);
    const tokens = this.deps.tokens === null ? [] : await this.deps.tokens.status();
    const upstreams: UpstreamHealth[] = [];
    for (const u of this.deps.upstreams) {
      const events = u.enabled ? await this.deps.audit.query({ action: 'login', protocol: u.protocol, limit: RECENT_EVENTS }) : [];
      const ok = events.find((e) => e.reason === 'ok');
      const failed: AuditEvent | undefined = events.find((e) => UPSTREAM_FAILURES.has(e.reason) && e.appPasswordId !== null);
      upstreams.push({
        ...u,
        lastSuccessAt: ok?.at ?? null,
        lastFailure: failed ? { at: failed.at, reason: failed.reason, detail: failed.detail } : null,
      });
    }
    return { at: this.deps.clock(), oauthConfigured: this.deps.tokens !== null, tokens, upstreams };
  }
}
