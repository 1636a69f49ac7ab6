import { Transform, type TransformCallback } from 'node:stream';
import type { CredentialStore } from '../core/credential-store.js';
import { loginStillValid } from './sender-policy.js';
import { SMTP_REPLIES, type SmtpReplySpec } from './smtp-replies.js';

/**
 * The last stage of a message on its way upstream: when the client's message has ended, and before the final "."
 * goes upstream, the app password is read from the store once more. One revoked, removed or expired since MAIL
 * (`app-password revoke` a moment ago, on any instance) fails the message, so the upstream transaction is abandoned
 * and nothing is delivered; the LiveSessionRegistry closes the session within `revocation_check_seconds` whatever
 * it is doing, this closes the gap between its rounds for the one moment that matters. A store that cannot be read
 * lets the message go (the login was authorised; availability over a check that cannot be made).
 */
export class LoginStillValidCheck extends Transform {
  refusal: SmtpReplySpec | null = null;

  constructor(
    private readonly store: CredentialStore,
    private readonly appPasswordId: string,
  ) {
    super();
  }

  override _transform(chunk: Buffer, _encoding: BufferEncoding, callback: TransformCallback): void {
    callback(null, chunk);
  }

  override _flush(callback: TransformCallback): void {
    loginStillValid(this.store, this.appPasswordId).then(
      (valid) => {
        if (valid) return callback();
        this.refusal = SMTP_REPLIES.loginRevokedDuringMessage;
        callback(new Error('the app password is no longer valid'));
      },
      (error: Error) => callback(error),
    );
  }
}
