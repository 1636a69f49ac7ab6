import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { checkContinuousErrors } from '../../../src/doctor/continuous-errors-check.js';
import type { MessageLog, MessageQuery, MessageRecord } from '../../../src/core/message-log.js';
import { configSchema } from '../../../src/config/config-schema.js';

const NOW = 1_800_000_000_000;
const smtp = configSchema.parse({}).smtp;

function log(records: Partial<MessageRecord>[]): MessageLog & { asked: MessageQuery[] } {
  const asked: MessageQuery[] = [];
  return {
    asked,
    append: async () => {},
    query: async (q) => (asked.push(q), records as MessageRecord[]),
    prune: async () => 0,
    close: async () => {},
  };
}

const refused = (reply: string, recipient = 'full@example.org'): Partial<MessageRecord> => ({ result: 'refused', mailbox: 'scanner@contoso.com', sender: 'scanner@contoso.com', recipients: [recipient], reply });

describe('doctor: smtp continuous errors', () => {
  it('passes with no 5.2.251-5.2.255 refusals in the last 24 hours, and says how passgate guards', async () => {
    const messages = log([refused('550 5.1.10 RESOLVER.ADR.RecipientNotFound')]);
    const result = await checkContinuousErrors(smtp, messages, NOW);
    assert.equal(result.status, 'pass');
    assert.match(result.detail, /holds a submission back after 3 such refusals, for 900 s/);
    assert.deepEqual(messages.asked, [{ result: 'refused', since: NOW - 86_400_000, limit: 1000 }]);
  });

  it('warns per (mailbox, sender, recipient), counting upstream refusals and passgate\'s holds, and explains', async () => {
    const result = await checkContinuousErrors(
      smtp,
      log([
        refused('550 5.2.254 Recipient mailbox full'),
        refused('550 5.2.254 Recipient mailbox full'),
        refused('550 5.2.254 Refused by passgate, not sent upstream: ...'),
        refused('554 5.2.252 SendAsDenied', 'boss@example.org'),
      ]),
      NOW,
    );
    assert.equal(result.status, 'warn');
    assert.match(result.detail, /^2 submission\(s\) refused/);
    assert.match(result.detail, /scanner@contoso\.com: scanner@contoso\.com → full@example\.org 5\.2\.254 refused upstream 2×, held back by passgate 1×/);
    assert.match(result.detail, /boss@example\.org 5\.2\.252 refused upstream 1×/);
    assert.match(result.hint!, /Exchange Online throttles a mailbox/);
  });

  it('skips when SMTP is off or the trace cannot be read', async () => {
    assert.equal((await checkContinuousErrors({ ...smtp, enabled: false }, log([]), NOW)).status, 'skip');
    const broken = { ...log([]), query: () => Promise.reject(new Error('no such table: message_log')) };
    assert.match((await checkContinuousErrors(smtp, broken, NOW)).detail, /cannot be read: no such table/);
  });
});
