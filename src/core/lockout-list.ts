/** What is locked out: a user (from untrusted networks), an address, or one user from one address. */
export type LockoutKind = 'user' | 'address' | 'user-address';

export const LOCKOUT_KINDS: readonly LockoutKind[] = ['user', 'address', 'user-address'];

export interface Lockout {
  kind: LockoutKind;
  /** `user@example.com`, `192.0.2.7` (an IPv6 /64 as `2001:db8:1:2::/64`), or `user@example.com 192.0.2.7`. */
  key: string;
  username: string | null;
  address: string | null;
  /** Epoch ms when it ends by itself. */
  until: number;
  /** The failures that tripped it, when known. */
  failures?: number;
}

/** The key of a lockout as listed and as given to unlock. */
export function lockoutKey(kind: LockoutKind, username: string | null, address: string | null): string {
  return kind === 'user' ? username! : kind === 'address' ? address! : `${username} ${address}`;
}

/** The username and address a lockout key names; null when the key cannot be one of this kind. */
export function parseLockoutKey(kind: LockoutKind, key: string): { username: string | null; address: string | null } | null {
  const trimmed = key.trim();
  if (trimmed === '') return null;
  if (kind === 'user') return /\s/.test(trimmed) ? null : { username: trimmed.toLowerCase(), address: null };
  if (kind === 'address') return /\s/.test(trimmed) ? null : { username: null, address: trimmed };
  const parts = trimmed.split(/\s+/);
  return parts.length === 2 ? { username: parts[0]!.toLowerCase(), address: parts[1]! } : null;
}

/**
 * Port: the lockouts in force now, listed and lifted (the admin page, LockoutAdmin). rate-limiter-flexible's keys
 * cannot be listed without a SCAN of the whole keyspace, so the limiter keeps a small index of the blocks it
 * trips beside its counters (memory, or Redis shared by every instance), bounded and expiring with the blocks.
 */
export interface LockoutControl {
  /** Lockouts not yet ended at `now`, the longest first. */
  lockouts(now: number): Promise<Lockout[]>;
  /** Lifts one: its counters are cleared (for every instance with Redis). False when it was not listed. */
  unlock(kind: LockoutKind, key: string): Promise<boolean>;
}
