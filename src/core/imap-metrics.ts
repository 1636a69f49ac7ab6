import type { SessionMetrics } from './session-metrics.js';
import type { UpstreamMetrics } from './upstream-metrics.js';

/** Port: what the IMAP gateway counts. observability/metrics.ts implements it. */
export interface ImapMetrics {
  bytes(direction: 'client-to-upstream' | 'upstream-to-client', bytes: number): void;
  sessions: SessionMetrics;
  upstream: UpstreamMetrics;
}
