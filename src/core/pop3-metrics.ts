import type { SessionMetrics } from './session-metrics.js';
import type { UpstreamMetrics } from './upstream-metrics.js';

/** Port: what the POP3 gateway counts. observability/metrics.ts implements it. */
export interface Pop3Metrics {
  bytes(direction: 'client-to-upstream' | 'upstream-to-client', bytes: number): void;
  sessions: SessionMetrics;
  upstream: UpstreamMetrics;
}
