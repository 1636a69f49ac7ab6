import type { AuditReason } from './audit-log.js';
import type { LimitScope } from './login-limiter.js';
import type { Protocol } from './protocol.js';

/** Port: what the authenticator counts. observability/metrics.ts implements it with prom-client. */
export interface AuthMetrics {
  attempt(protocol: Protocol, reason: AuditReason): void;
  credentialCache(hit: boolean): void;
  rateLimitBlock(scope: LimitScope): void;
}
