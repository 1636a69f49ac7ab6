import type { SMTPServerAddress } from 'smtp-server';
import type { MessagePolicy } from '../core/app-password-record.js';
import type { CredentialStore } from '../core/credential-store.js';
import type { MessageLimiter } from '../core/message-limiter.js';
import { envelopeAddress } from './envelope-address.js';
import { SMTP_REPLIES, type SmtpReplySpec } from './smtp-replies.js';

/** The app password is still there, not revoked, not expired, not turned off (a store outage keeps the session going). */
export async function loginStillValid(store: CredentialStore, appPasswordId: string): Promise<boolean> {
  try {
    const record = await store.get(appPasswordId);
    return record !== null && record.revokedAt === null && record.disabledAt === null && (record.expiresAt === null || record.expiresAt > Date.now());
  } catch {
    return true;
  }
}

/** The address is the mailbox or one of the policy's allowed senders (domains compared in ASCII form, case-insensitive). */
export function senderAllowed(login: { mailbox: string; policy: MessagePolicy }, address: string): boolean {
  const sender = envelopeAddress(address).toLowerCase();
  const allowed = (candidate: string) => envelopeAddress(candidate).toLowerCase() === sender;
  return allowed(login.mailbox) || login.policy.allowedSenders.some(allowed);
}

/**
 * The password's policy for a new message: MAIL FROM is the mailbox or an allowed sender (domains compared in
 * their ASCII form, so an IDN matches whichever form the policy or the client used), a declared SIZE fits,
 * and the hourly and daily message counts have room. null: the message may start.
 */
export async function checkSender(
  messages: MessageLimiter,
  login: { mailbox: string; appPasswordId: string; policy: MessagePolicy },
  address: SMTPServerAddress,
): Promise<SmtpReplySpec | null> {
  if (!senderAllowed(login, address.address)) return SMTP_REPLIES.senderDenied;
  const declared = address.args && typeof address.args.SIZE === 'string' ? Number(address.args.SIZE) : 0;
  if (login.policy.maxMessageBytes !== null && declared > login.policy.maxMessageBytes) return SMTP_REPLIES.messageTooBig;
  if (!(await messages.allows(login.appPasswordId, login.policy))) return SMTP_REPLIES.messageRateExceeded;
  return null;
}
