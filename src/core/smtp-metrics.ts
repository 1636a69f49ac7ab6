import type { SessionMetrics } from './session-metrics.js';
import type { UpstreamMetrics } from './upstream-metrics.js';

/** Port: what the SMTP gateway counts. observability/metrics.ts implements it. */
export interface SmtpMetrics {
  message(result: 'accepted' | 'refused' | 'upstream-failed' | 'too-big', bytes: number): void;
  /** A client waited for a pooled upstream session longer than `smtp.upstream.wait_seconds`. */
  poolWaitTimedOut(): void;
  /** A submission refused by passgate itself after the upstream's continuous refusals (the enhanced code repeated). */
  continuousErrorRefusal(enhanced: string): void;
  sessions: SessionMetrics;
  upstream: UpstreamMetrics;
}
