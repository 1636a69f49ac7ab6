/** Port: the slow, salted, peppered password hash (argon2id in production). */
export interface PasswordHasher {
  hash(password: string): Promise<string>;
  /** Constant-time verification; false for a wrong password or an unparsable hash. */
  verify(hash: string, password: string): Promise<boolean>;
  /** True when `hash` was made with weaker parameters than the configured ones. */
  needsRehash(hash: string): boolean;
}
