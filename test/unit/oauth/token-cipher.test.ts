import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { describe, it } from 'node:test';
import { TokenCipher } from '../../../src/oauth/token-cipher.js';

describe('TokenCipher', () => {
  const cipher = TokenCipher.fromConfig(randomBytes(32).toString('base64'));

  it('round-trips, and binds the sealed token to its key name', () => {
    const sealed = cipher.seal('refresh-token-value', 'mailbox:a@example.com');
    assert.ok(!sealed.includes('refresh-token-value'));
    assert.equal(cipher.open(sealed, 'mailbox:a@example.com'), 'refresh-token-value');
    assert.throws(() => cipher.open(sealed, 'mailbox:b@example.com'), { code: 'PG_CONFIG_INVALID' });
  });

  it('refuses a tampered body, a truncated tag, another key, and a malformed key in config', () => {
    const sealed = cipher.seal('token', 'app');
    const [v, iv, tag, body] = sealed.split('.') as [string, string, string, string];
    const flipped = Buffer.from(body, 'base64url');
    flipped[0]! ^= 1;
    assert.throws(() => cipher.open([v, iv, tag, flipped.toString('base64url')].join('.'), 'app'));
    const shortTag = Buffer.from(tag, 'base64url').subarray(0, 4).toString('base64url');
    assert.throws(() => cipher.open([v, iv, shortTag, body].join('.'), 'app'), /decrypt/);
    assert.throws(() => TokenCipher.fromConfig(randomBytes(32).toString('hex')).open(sealed, 'app'));
    assert.throws(() => TokenCipher.fromConfig('too-short'), /oauth\.token_encryption_key: must be 32 random bytes/);
  });
});
