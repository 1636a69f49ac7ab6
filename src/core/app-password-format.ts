import { randomInt } from 'node:crypto';

/** The longest app password passgate generates or accepts. */
export const MAX_APP_PASSWORD_LENGTH = 64;
const GROUP = 4;

/**
 * The app password's text form: lowercase letters only, from a CSPRNG, shown grouped in fours
 * (`abcd-efgh-ijkl-mnop`). 16 letters carry log2(26^16) ≈ 75 bits.
 *
 * At login, spaces, dashes and letter case are ignored (people retype what they were shown, printers
 * upper-case it); anything that is then not letters of an accepted length is refused before any hashing,
 * so garbage costs no argon2 time.
 */
export class AppPasswordFormat {
  constructor(
    /** Length of newly generated passwords (config `app_passwords.length`). */
    readonly length: number,
    /** Shortest length accepted at login and at creation (config `app_passwords.min_length`). */
    readonly minLength: number,
  ) {
    if (minLength < 8 || minLength > MAX_APP_PASSWORD_LENGTH) throw new RangeError('minLength out of range');
    if (length < minLength || length > MAX_APP_PASSWORD_LENGTH) throw new RangeError('length out of range');
  }

  /** A new password of `length` letters (default: the configured length), in canonical (ungrouped) form. */
  generate(length = this.length): string {
    if (!Number.isInteger(length) || length < this.minLength || length > MAX_APP_PASSWORD_LENGTH) {
      throw new RangeError(`length must be a whole number from ${this.minLength} to ${MAX_APP_PASSWORD_LENGTH}`);
    }
    let out = '';
    // randomInt rejects biased values itself, so every letter is uniform.
    for (let i = 0; i < length; i++) out += String.fromCharCode(97 + randomInt(26));
    return out;
  }

  /** The canonical form of what a client typed, or null when it cannot be an app password. */
  normalize(input: string): string | null {
    if (input.length > MAX_APP_PASSWORD_LENGTH * 3) return null;
    const canonical = input.replace(/[\s-]/g, '').toLowerCase();
    if (canonical.length < this.minLength || canonical.length > MAX_APP_PASSWORD_LENGTH) return null;
    return /^[a-z]+$/.test(canonical) ? canonical : null;
  }

  /** The grouped form shown once to the operator: `abcd-efgh-ijkl-mnop`. */
  display(canonical: string): string {
    const groups: string[] = [];
    for (let i = 0; i < canonical.length; i += GROUP) groups.push(canonical.slice(i, i + GROUP));
    return groups.join('-');
  }
}
