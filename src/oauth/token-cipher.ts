import { createCipheriv, createDecipheriv, randomBytes } from 'node:crypto';
import { GatewayError } from '../core/gateway-error.js';

const VERSION = 'v1';

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
    const iv = randomBytes(12);
    const cipher = createCipheriv('aes-256-gcm', this.key, iv);
    cipher.setAAD(Buffer.from(context));
    const body = Buffer.concat([cipher.update(plaintext, 'utf8'), cipher.final()]);
    return [VERSION, iv, cipher.getAuthTag(), body].map((p) => (typeof p === 'string' ? p : p.toString('base64url'))).join('.');
  }

  /** Throws PG_CONFIG_INVALID when the data was sealed under another key or for another context. */
  open(sealed: string, context: string): string {
    const [version, iv, tag, body] = sealed.split('.');
    try {
      if (version !== VERSION || !iv || !tag || body === undefined) throw new Error('unknown format');
      const decipher = createDecipheriv('aes-256-gcm', this.key, Buffer.from(iv, 'base64url'));
      decipher.setAAD(Buffer.from(context));
      decipher.setAuthTag(Buffer.from(tag, 'base64url'));
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
