import { CLI_ACTOR } from '../../src/core/actor.js';
import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import type { App } from '../../src/app.js';
import { startSmtpHarness, type SmtpHarness } from '../helpers/smtp-harness.js';
import { SmtpTranscript } from '../helpers/smtp-transcript.js';

/** passgate_auth_attempts_total of SMTP, by result and reason. */
async function attempts(app: App): Promise<Record<string, number>> {
  const metric = await app.metrics.authAttempts.get();
  return Object.fromEntries(metric.values.filter((v) => v.labels.protocol === 'smtp').map((v) => [`${v.labels.result}/${v.labels.reason}`, v.value]));
}

const delta = (after: Record<string, number>, before: Record<string, number>) =>
  Object.fromEntries(Object.entries(after).filter(([k, v]) => v !== (before[k] ?? 0)).map(([k, v]) => [k, v - (before[k] ?? 0)]));

describe('one login attempt is one audit record, one count, one outcome (real SMTP upstream and OAuth server)', () => {
  let h: SmtpHarness;
  before(async () => {
    h = await startSmtpHarness();
  });
  after(async () => h.close());

  const auth = async (user: string, password: string) => {
    return SmtpTranscript.authReply(h.ports.submissions!, user, password);
  };

  it('the upstream refuses the mailbox: one record (upstream-rejected), one failure counted, last use unmoved', async () => {
    // A mailbox with no pooled upstream session, so AUTH opens a new one and the upstream has its say.
    const user = 'refused@example.com';
    const { password, view: record } = await h.app.admin.appPasswords.create(CLI_ACTOR, { username: user, name: 'Printer' });
    h.upstream.refuseLogins = { code: 535, text: '5.7.139 Authentication unsuccessful, SmtpClientAuthentication is disabled for the Mailbox' };
    const counted = await attempts(h.app);
    try {
      assert.match(await auth(user, password), /^535 5\.7\.0 Mailbox refused by the upstream/);
    } finally {
      h.upstream.refuseLogins = null;
    }
    const records = (await h.app.audit.query({ username: user, limit: 10 })).filter((e) => e.action === 'login');
    assert.deepEqual(records.map((e) => e.reason), ['upstream-rejected']);
    assert.deepEqual(delta(await attempts(h.app), counted), { 'failure/upstream-rejected': 1 });
    const stored = await h.app.store.get(record.id);
    assert.equal(stored!.lastUsedAt, null, 'the device did not get in: its last use stays');
  });

  it('a login that gets in: one record (ok), one success counted, and last use moves', async () => {
    const user = 'works@example.com';
    const { password, view: record } = await h.app.admin.appPasswords.create(CLI_ACTOR, { username: user, name: 'Scanner' });
    const counted = await attempts(h.app);
    assert.match(await auth(user, password), /^235 /);
    const records = (await h.app.audit.query({ username: user, limit: 10 })).filter((e) => e.action === 'login');
    assert.deepEqual(records.map((e) => e.reason), ['ok']);
    assert.deepEqual(delta(await attempts(h.app), counted), { 'success/ok': 1 });
    assert.ok((await h.app.store.get(record.id))!.lastUsedAt !== null);
  });
});
