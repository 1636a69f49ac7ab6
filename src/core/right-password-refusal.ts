import type { AuditReason } from './audit-log.js';

/**
 * Reasons that refuse a password that was right: the credential exists and the typed password verified, but it may
 * not be used now (revoked, expired, turned off, the wrong protocol, the wrong network). To a client each must be
 * indistinguishable from a wrong password — same reply, same delay and cost, same counting — or a guesser learns
 * which guess was right (and then tries it from an allowed network or protocol). The authenticator treats every
 * verifier refusal that carries a record as one of these by construction; this set names them for the reply tables'
 * test (test/unit/core/right-password-refusal.test.ts), so a new reason added here is checked there too.
 */
export const RIGHT_PASSWORD_REFUSALS = ['revoked', 'expired', 'scope-denied', 'network-denied'] as const satisfies readonly AuditReason[];

export type RightPasswordRefusal = (typeof RIGHT_PASSWORD_REFUSALS)[number];
