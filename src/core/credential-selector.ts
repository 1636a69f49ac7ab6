import { createHmac } from 'node:crypto';

/**
 * A keyed, non-secret lookup key for an app password: the first 32 bits of HMAC-SHA256(selectorKey,
 * username NUL password). It finds the one candidate record, so a login costs at most one argon2
 * verification however many passwords the user holds. 32 bits collide rarely among a user's few
 * passwords (creation retries on a collision) but match ~2^43 of the 2^75 possible passwords, so even a
 * leaked key and database leave argon2 as the barrier.
 */
export class CredentialSelector {
  constructor(private readonly key: Buffer) {}

  derive(username: string, canonicalPassword: string): string {
    return createHmac('sha256', this.key).update(`${username}\0${canonicalPassword}`).digest('hex').slice(0, 8);
  }
}
