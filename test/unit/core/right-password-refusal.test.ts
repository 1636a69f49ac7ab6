import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { RIGHT_PASSWORD_REFUSALS } from '../../../src/core/right-password-refusal.js';
import { IMAP_LOGIN_REPLIES } from '../../../src/imap/imap-replies.js';
import { AUTH_REPLIES } from '../../../src/smtp/smtp-replies.js';

describe('a right password refused reads exactly like a wrong one', () => {
  for (const reason of RIGHT_PASSWORD_REFUSALS) {
    it(`${reason}: the same SMTP and IMAP reply as invalid-credentials`, () => {
      assert.deepEqual(AUTH_REPLIES[reason], AUTH_REPLIES['invalid-credentials']);
      assert.equal(IMAP_LOGIN_REPLIES[reason], IMAP_LOGIN_REPLIES['invalid-credentials']);
    });
  }
});
