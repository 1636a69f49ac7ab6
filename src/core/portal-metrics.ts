/** How a portal sign-in ended: signed in, refused by the portal's rules, or failed at the provider's answer. */
export type PortalSignInResult = 'ok' | 'no-address' | 'not-allowed' | 'mfa-required' | 'failed';

/** A portal request refused before it changed anything. */
export type PortalRefusal = 'csrf' | 'forbidden' | 'rate-limited';

/** Port: what the web portal counts (observability/metrics.ts implements it). */
export interface PortalMetrics {
  signIn(result: PortalSignInResult): void;
  refused(reason: PortalRefusal): void;
}
