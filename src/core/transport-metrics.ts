/**
 * Port: which transport carried each message (issue 20): `smtp` (the SMTP AUTH relay) or `graph` (Graph sendMail),
 * and the verdict the client got after DATA (`accepted` a 2xx, `refused` a 4xx/5xx reply, `failed` no reply). The
 * submission router counts it (upstream/submission-upstream-router.ts); observability/metrics.ts implements it.
 */
export interface TransportMetrics {
  message(transport: string, result: 'accepted' | 'refused' | 'failed', seconds: number): void;
}
