/**
 * Port: a count of requests per key in a fixed window, shared by every instance when Redis is configured (the
 * Graph transport's 10,000 requests per 10 minutes per app and mailbox), and the pauses the service asked for
 * (Graph's Retry-After), shared the same way. `take` spends one request, or says how long until the window has room
 * again; `pause` closes the key for a while; `paused` says for how much longer (0: open).
 */
export interface RequestBudget {
  take(key: string): Promise<{ ok: true } | { ok: false; retryAfterMs: number }>;
  pause(key: string, ms: number): Promise<void>;
  paused(key: string): Promise<number>;
}
