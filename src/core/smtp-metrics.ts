/** Port: what the SMTP gateway counts. observability/metrics.ts implements it. */
export interface SmtpMetrics {
  message(result: 'accepted' | 'refused' | 'upstream-failed' | 'too-big', bytes: number): void;
}
