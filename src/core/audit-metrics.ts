/** Port: what the sign-in log's outage buffer counts (observability/metrics.ts implements it). */
export interface AuditMetrics {
  /** One sign-in record that will never be written: the buffer was full, or it was still held at shutdown. */
  dropped(): void;
}
