import { randomBytes } from 'node:crypto';
import type { AppPasswordRecord } from '../../src/core/app-password-record.js';

let seq = 0;

/** A record with plausible values; tests override what they examine. */
export function makeRecord(overrides: Partial<AppPasswordRecord> = {}): AppPasswordRecord {
  seq++;
  const id = `ap_${randomBytes(10).toString('hex').replace(/[^a-z2-7]/g, 'a').padEnd(16, 'b').slice(0, 16)}`;
  return {
    id,
    username: 'alice@example.com',
    mailbox: 'alice@example.com',
    name: `Device ${seq}`,
    scopes: ['smtp', 'imap'],
    allowedNetworks: [],
    expiresAt: null,
    createdAt: 1_700_000_000_000 + seq,
    createdBy: 'test',
    lastUsedAt: null,
    lastUsedIp: null,
    lastUsedProtocol: null,
    useCount: 0,
    revokedAt: null,
    disabledAt: null,
    policy: { allowedSenders: [], allowedRecipientDomains: [], maxMessageBytes: null, maxMessagesPerHour: null, maxMessagesPerDay: null, checkFromHeader: null },
    selector: randomBytes(3).toString('hex'),
    hash: `$argon2id$v=19$m=1024,t=1,p=1$${randomBytes(8).toString('base64')}`,
    ...overrides,
  };
}
