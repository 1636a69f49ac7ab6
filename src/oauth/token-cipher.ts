import { createCipheriv, createDecipheriv, randomBytes } from 'node:crypto';
import { GatewayError } from '../core/gateway-error.js';

const VERSION = 'v1';
const IV_BYTES = 12;
/** NIST SP 800-38D: the full 128-bit tag; a shorter one presented on decryption is refused, never accepted. */
const TAG_BYTES = 16;

/**
 * AES-256-GCM for tokens at rest: `v1.<iv>.<tag>.<ciphertext>` (base64url), with the token's key
 * (`mailbox:<address>`) as additional authenticated data, so a sealed token cannot be moved to another mailbox.
 */
export class TokenCipher {
  private constructor(private readonly key: Buffer) {}

  /** Accepts 32 bytes as base64 (44 characters) or hex (64); the error names the config key. */
  static fromConfig(value: string, configKey = 'oauth.token_encryption_key'): TokenCipher {
    const text = value.trim();
    const key = /^[0-9a-f]{64}$/i.test(text) ? Buffer.from(text, 'hex') : Buffer.from(text, 'base64');
    if (key.length !== 32) {
      throw new GatewayError(
        'PG_CONFIG_INVALID',
        `${configKey}: must be 32 random bytes, base64 or hex (generate one with: openssl rand -base64 32)`,
      );
    }
    return new TokenCipher(key);
  }

  seal(plaintext: string, context: string): string {
    const iv = randomBytes(IV_BYTES);
    const cipher = createCipheriv('aes-256-gcm', this.key, iv, { authTagLength: TAG_BYTES });
    cipher.setAAD(Buffer.from(context));
    const body = Buffer.concat([cipher.update(plaintext, 'utf8'), cipher.final()]);
    return [VERSION, iv, cipher.getAuthTag(), body].map((p) => (typeof p === 'string' ? p : p.toString('base64url'))).join('.');
  }

  /** Throws PG_CONFIG_INVALID when the data was sealed under another key or for another context. */
  open(sealed: string, context: string): string {
    const [version, iv, tag, body] = sealed.split('.');
    try {
      if (version !== VERSION || !iv || !tag || body === undefined) throw new Error('unknown format');
      const ivBytes = Buffer.from(iv, 'base64url');
      const tagBytes = Buffer.from(tag, 'base64url');
      if (ivBytes.length !== IV_BYTES || tagBytes.length !== TAG_BYTES) throw new Error('wrong iv or tag length');
      const decipher = createDecipheriv('aes-256-gcm', this.key, ivBytes, { authTagLength: TAG_BYTES });
      decipher.setAAD(Buffer.from(context));
      decipher.setAuthTag(tagBytes);
      return Buffer.concat([decipher.update(Buffer.from(body, 'base64url')), decipher.final()]).toString('utf8');
    } catch (cause) {
      throw new GatewayError(
        'PG_CONFIG_INVALID',
        `cannot decrypt the stored token of ${context}: was oauth.token_encryption_key changed?`,
        { cause },
      );
    }
  }
}
