import { normalizeUsername } from '../core/app-password-record.js';

/** Who may sign in and who is an admin (config portal.oidc and portal.mailbox_grants). */
export interface IdentityRules {
  allowedDomains: string[];
  allowedClaim: { name: string; values: string[] } | null;
  adminClaim: string;
  adminValues: string[];
  requireMfa: boolean;
  mailboxGrants: Record<string, string[]>;
}

export interface PortalIdentity {
  username: string;
  role: 'admin' | 'user';
  /** Their own mailbox first, then those granted. */
  mailboxes: string[];
  /** Epoch seconds. */
  authTime: number;
  amr: string[];
}

/** Why the provider's word is not enough; shown to the person in plain words (SIGN_IN_REFUSALS). */
export type SignInRefusal = 'no-address' | 'not-allowed' | 'mfa-required';

export const SIGN_IN_REFUSALS: Record<SignInRefusal, string> = {
  'no-address': 'Your account has no mail address the portal can use. Ask your IT team.',
  'not-allowed': 'Your account is not allowed to use this portal. Ask your IT team if you think it should be.',
  'mfa-required': 'This portal needs a sign-in with multi-factor authentication. Sign in again with your second factor.',
};

function claimValues(claims: Record<string, unknown>, name: string): string[] {
  const value = claims[name];
  if (typeof value === 'string') return [value];
  return Array.isArray(value) ? value.filter((v): v is string => typeof v === 'string') : [];
}

/**
 * The person the ID token names, if the rules let them in: the address is `email` (unless `email_verified` is
 * false), else `preferred_username` (Entra's UPN), lower-cased; allowed by its domain or by the allowed claim; an admin when admin_claim holds one of
 * admin_values; refused without `mfa` in `amr` when MFA is required (RFC 8176). Checked at every sign-in, so a
 * person who left the domain or lost the claim is refused at the next one.
 */
export function identityFromClaims(claims: Record<string, unknown>, rules: IdentityRules, nowSeconds: number): { ok: true; identity: PortalIdentity } | { ok: false; reason: SignInRefusal; username: string | null } {
  // An email the provider says is unverified is not used (OpenID Connect Core §5.1; Entra drops unverified ones).
  const email = claims.email_verified === false ? undefined : claims.email;
  const raw = [email, claims.preferred_username].find((v): v is string => typeof v === 'string' && /^[^@\s]+@[^@\s]+\.[^@\s]+$/.test(v));
  if (raw === undefined) return { ok: false, reason: 'no-address', username: null };
  const username = normalizeUsername(raw);
  const domain = username.slice(username.lastIndexOf('@') + 1);
  const byDomain = rules.allowedDomains.some((d) => d.toLowerCase() === domain);
  const byClaim = rules.allowedClaim !== null && claimValues(claims, rules.allowedClaim.name).some((v) => rules.allowedClaim!.values.includes(v));
  if (!byDomain && !byClaim) return { ok: false, reason: 'not-allowed', username };
  const amr = claimValues(claims, 'amr');
  if (rules.requireMfa && !amr.includes('mfa')) return { ok: false, reason: 'mfa-required', username };
  const admin = claimValues(claims, rules.adminClaim).some((v) => rules.adminValues.includes(v));
  const granted = Object.entries(rules.mailboxGrants)
    .filter(([user]) => normalizeUsername(user) === username)
    .flatMap(([, boxes]) => boxes.map(normalizeUsername));
  const authTime = typeof claims.auth_time === 'number' ? claims.auth_time : nowSeconds;
  return {
    ok: true,
    identity: { username, role: admin ? 'admin' : 'user', mailboxes: [...new Set([username, ...granted])], authTime, amr },
  };
}
