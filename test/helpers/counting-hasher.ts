import type { PasswordHasher } from '../../src/core/password-hasher.js';

/** Wraps a real hasher and counts calls, to prove how many argon2 verifications a login costs. */
export class CountingHasher implements PasswordHasher {
  hashes = 0;
  verifications = 0;

  constructor(private readonly inner: PasswordHasher) {}

  hash(password: string): Promise<string> {
    this.hashes++;
    return this.inner.hash(password);
  }

  verify(hash: string, password: string): Promise<boolean> {
    this.verifications++;
    return this.inner.verify(hash, password);
  }

  needsRehash(hash: string): boolean {
    return this.inner.needsRehash(hash);
  }

  reset(): void {
    this.hashes = 0;
    this.verifications = 0;
  }
}
