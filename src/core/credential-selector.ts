import { createHmac } from 'node:crypto';

/**
 * A keyed, non-secret lookup key for an app password: the first 24 bits of HMAC-SHA256(selectorKey,
 * username NUL password). It finds the one candidate record, so a login costs at most one argon2
 * verification however many passwords the user holds. 24 bits collide rarely among a user's few passwords
 * (creation draws a new password on a collision), yet even with the pepper and the database stolen, each
 * selector still matches 2^51 of the 2^75 possible 16-letter passwords (2^32 of the 2^56 12-letter ones), so
 * argon2 stays the barrier an offline attacker must pay for.
 */
export class CredentialSelector {
  constructor(private readonly key: Buffer) {}

  derive(username: string, canonicalPassword: string): string {
    return createHmac('sha256', this.key).update(`${username}\0${canonicalPassword}`).digest('hex').slice(0, 6);
  }
}
