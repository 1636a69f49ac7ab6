import type { Protocol } from './protocol.js';

/**
 * What mail a password may send (SMTP), so a leaked printer password can only do what the printer does.
 * MAIL FROM must always be the mailbox or one of `allowedSenders`.
 */
export interface MessagePolicy {
  /** Sender addresses allowed besides the mailbox itself (lower-case). */
  allowedSenders: string[];
  /** Recipient domains allowed (lower-case); empty: any. */
  allowedRecipientDomains: string[];
  maxMessageBytes: number | null;
  maxMessagesPerHour: number | null;
  maxMessagesPerDay: number | null;
  /**
   * SMTP: the From header must be the mailbox or an allowed sender (issue 17); null: the listener's default
   * (config `smtp.check_from_header`).
   */
  checkFromHeader: boolean | null;
}

export const NO_MESSAGE_LIMITS: MessagePolicy = {
  allowedSenders: [],
  allowedRecipientDomains: [],
  maxMessageBytes: null,
  maxMessagesPerHour: null,
  maxMessagesPerDay: null,
  checkFromHeader: null,
};

/** One app password as stored. `hash` and `selector` never leave the store layer except to verify. */
export interface AppPasswordRecord {
  /** Stable public id, `ap_` + 16 base32 characters. */
  id: string;
  /** What the client types as its username; lower-cased. */
  username: string;
  /** The upstream identity the session acts as; defaults to the username. */
  mailbox: string;
  /** Operator's label, e.g. "Scanner, 3rd floor". */
  name: string;
  scopes: Protocol[];
  /** CIDR list; empty means any network. */
  allowedNetworks: string[];
  /** Epoch ms, or null for no expiry. */
  expiresAt: number | null;
  createdAt: number;
  createdBy: string;
  lastUsedAt: number | null;
  lastUsedIp: string | null;
  lastUsedProtocol: Protocol | null;
  useCount: number;
  revokedAt: number | null;
  /** Epoch ms since when it is turned off (refused at login, live sessions cut; reversible), or null: on. */
  disabledAt: number | null;
  policy: MessagePolicy;
  /** Keyed, non-secret lookup key derived from (username, password); see CredentialSelector. */
  selector: string;
  /** argon2id PHC string. */
  hash: string;
}

/** What may be shown to an operator: everything but the hash and the selector. */
export type AppPasswordView = Omit<AppPasswordRecord, 'hash' | 'selector'>;

export function toView(record: AppPasswordRecord): AppPasswordView {
  // Listed field by field so a new secret field is never shown by accident.
  return {
    id: record.id,
    username: record.username,
    mailbox: record.mailbox,
    name: record.name,
    scopes: [...record.scopes],
    allowedNetworks: [...record.allowedNetworks],
    expiresAt: record.expiresAt,
    createdAt: record.createdAt,
    createdBy: record.createdBy,
    lastUsedAt: record.lastUsedAt,
    lastUsedIp: record.lastUsedIp,
    lastUsedProtocol: record.lastUsedProtocol,
    useCount: record.useCount,
    revokedAt: record.revokedAt,
    disabledAt: record.disabledAt,
    policy: {
      ...record.policy,
      allowedSenders: [...record.policy.allowedSenders],
      allowedRecipientDomains: [...record.policy.allowedRecipientDomains],
    },
  };
}

/** What a person sees: `off` is turned off (reversible), `revoked` is for good. */
export type AppPasswordStatus = 'active' | 'off' | 'expired' | 'revoked';

/** The status at `now`: revoked > expired > off > active (the most final state wins). */
export function statusOf(record: AppPasswordRecord | AppPasswordView, now: number): AppPasswordStatus {
  if (record.revokedAt !== null) return 'revoked';
  if (record.expiresAt !== null && record.expiresAt <= now) return 'expired';
  if (record.disabledAt !== null) return 'off';
  return 'active';
}

/** The former name of statusOf. */
export const recordStatus = statusOf;

/** Usernames are compared case-insensitively, as mail addresses are in practice. */
export function normalizeUsername(username: string): string {
  return username.trim().toLowerCase();
}

/** A username passgate can store and key on: no spaces, no control characters, no braces (Redis hash tags). */
export function isValidUsername(username: string): boolean {
  return username.length > 0 && username.length <= 320 && /^[^\s{}\p{Cc}]+$/u.test(username);
}
