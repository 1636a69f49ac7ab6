import argon2 from 'argon2';
import type { PasswordHasher } from '../core/password-hasher.js';

export interface Argon2Parameters {
  memoryKib: number;
  timeCost: number;
  parallelism: number;
}

/**
 * argon2id (RFC 9106) with a server-side secret. The work runs on libuv's thread pool, off the event loop.
 * Verification is constant-time inside argon2; a malformed stored hash verifies as false, never throws.
 */
export class Argon2PasswordHasher implements PasswordHasher {
  constructor(
    private readonly params: Argon2Parameters,
    private readonly secret: Buffer,
  ) {}

  hash(password: string): Promise<string> {
    return argon2.hash(password, {
      type: argon2.argon2id,
      memoryCost: this.params.memoryKib,
      timeCost: this.params.timeCost,
      parallelism: this.params.parallelism,
      secret: this.secret,
    });
  }

  async verify(hash: string, password: string): Promise<boolean> {
    try {
      return await argon2.verify(hash, password, { secret: this.secret });
    } catch {
      return false;
    }
  }

  needsRehash(hash: string): boolean {
    try {
      return argon2.needsRehash(hash, {
        memoryCost: this.params.memoryKib,
        timeCost: this.params.timeCost,
        parallelism: this.params.parallelism,
      });
    } catch {
      return false;
    }
  }
}
