/**
 * Port: brute-force defence state (rate-limiter-flexible on Redis, shared by every instance, or in memory).
 *
 * Rules (numbers from config `rate_limit`):
 *  - pair (username, ip): `pair.max_failures` consecutive failures block the pair for `pair.block_seconds`,
 *    doubling with each further block within a day, up to `pair.max_block_seconds`; a success clears the count.
 *  - ip: more than `ip.burst_failures` failures in `ip.burst_seconds` block the ip until that window ends; more
 *    than `ip.daily_failures` in a day block it for `ip.block_seconds`.
 *  - user: more than `user.max_distinct_failures` distinct wrong passwords in a day (a device repeating one
 *    stale password counts once) lock the user for `user.lock_seconds` — except from an ip the user logged in
 *    from successfully within `user.known_ip_days`.
 *  - trusted networks are exempt from the ip and user rules, never from the pair rule.
 *  - a failure repeated within a day (same user, ip and typed password, by fingerprint) counts once: a repeat adds
 *    only to the ip burst count. Right passwords refused (revoked, expired, scope, network) count like wrong ones.
 * `ip` is the limiting key of the client address: the address for IPv4, its /64 for IPv6.
 * When Redis fails, an in-memory insurance limiter keeps enforcing the same rules on this instance.
 */
export interface LoginAttemptKey {
  username: string;
  ip: string;
  /** The client is inside `rate_limit.trusted_networks`. */
  trusted: boolean;
}

export type LimitScope = 'pair' | 'ip' | 'user';

export type LimitVerdict = { blocked: false } | { blocked: true; scope: LimitScope; retryAfterMs: number };

export interface LoginLimiter {
  /** Before any verification: may this attempt proceed? Counts nothing. */
  check(key: LoginAttemptKey): Promise<LimitVerdict>;
  /**
   * After a failed verification. `fingerprint` is a keyed hash of the wrong password, for distinct counting.
   * Returns the verdict for the next attempt (blocked: this failure tripped a rule).
   */
  recordFailure(key: LoginAttemptKey, fingerprint: string): Promise<LimitVerdict>;
  /** After a successful verification: clears the pair's consecutive-failure count. */
  recordSuccess(key: LoginAttemptKey): Promise<void>;
  close(): Promise<void>;
}
