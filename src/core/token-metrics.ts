import type { TokenInvalidationReason } from './token-provider.js';

/** Port: what the token provider counts. observability/metrics.ts implements it. */
export interface TokenMetrics {
  /** One request to the provider: its result and how long it took. */
  request(result: 'success' | 'config' | 'grant-lost' | 'temporary', seconds: number): void;
  /** A getAccessToken answered from the cache (memory or the shared store) without asking the provider. */
  cacheHit(): void;
  /** A cached access token dropped before its expiry because the upstream refused it. */
  invalidation(reason: TokenInvalidationReason): void;
}
