import type { MessagePolicy } from './app-password-record.js';

/**
 * Port: messages per hour and per day for one app password (its MessagePolicy), counted like logins: in Redis
 * when configured (shared by every instance), in memory otherwise.
 */
export interface MessageLimiter {
  /** True when one more message is within both limits (null limits always are). */
  allows(appPasswordId: string, policy: MessagePolicy): Promise<boolean>;
  /** Counts one message the upstream accepted. */
  count(appPasswordId: string, policy: MessagePolicy): Promise<void>;
}
