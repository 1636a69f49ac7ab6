/**
 * Port: a count of requests per key in a fixed window, shared by every instance when Redis is configured (the
 * Graph transport's 10,000 requests per 10 minutes per app and mailbox). `take` spends one request, or says how
 * long until the window has room again.
 */
export interface RequestBudget {
  take(key: string): Promise<{ ok: true } | { ok: false; retryAfterMs: number }>;
}
