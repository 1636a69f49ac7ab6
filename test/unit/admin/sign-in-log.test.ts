import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import { openApp, type App } from '../../../src/app.js';
import { CLI_ACTOR, type Actor } from '../../../src/core/actor.js';
import { AUDIT_REASONS, type AuditEvent } from '../../../src/core/audit-log.js';
import { createLogger } from '../../../src/observability/logger.js';
import { makeTestConfig, type TestConfig } from '../../helpers/test-config.js';

const alice: Actor = { role: 'user', id: 'alice@example.com', mailboxes: ['alice@example.com'], ip: null, userAgent: null };
const admin: Actor = { role: 'admin', id: 'boss@example.com', mailboxes: [], ip: null, userAgent: null };

describe('SignInLog and HealthAdmin', () => {
  let tc: TestConfig;
  let app: App;
  const at = 1_800_000_000_000;
  before(async () => {
    tc = makeTestConfig();
    app = await openApp(tc.config, { logger: createLogger('silent'), clock: () => at + 10_000 });
    const event = (over: Partial<AuditEvent>): AuditEvent => ({
      at,
      action: 'login',
      protocol: 'imap',
      username: 'alice@example.com',
      clientIp: '192.0.2.1',
      appPasswordId: 'ap_aaaaaaaaaaaaaaaa',
      appPasswordName: 'Phone',
      reason: 'ok',
      detail: null,
      ...over,
    });
    for (const e of [
      event({}),
      event({ at: at + 1, reason: 'disabled' }),
      event({ at: at + 2, protocol: 'smtp', reason: 'invalid-credentials', appPasswordId: null }),
      event({ at: at + 3, username: 'bob@example.com', reason: 'upstream-rejected', detail: '535 5.7.3' }),
      event({ at: at + 4, username: 'bob@example.com', protocol: 'smtp' }),
    ]) {
      await app.audit.append(e);
    }
  });
  after(async () => {
    await app.close();
    tc.cleanup();
  });

  it('a user reads only their own events, whatever the filter; an admin filters everyone\'s', async () => {
    const mine = await app.admin.signInLog.query(alice, { username: 'bob@example.com', limit: 50 });
    assert.deepEqual(mine.map((e) => [e.username, e.at]), [['alice@example.com', at + 2], ['alice@example.com', at + 1], ['alice@example.com', at]]);
    const filtered = await app.admin.signInLog.query(admin, { reason: 'upstream-rejected', limit: 50 });
    assert.deepEqual(filtered.map((e) => e.username), ['bob@example.com']);
    assert.equal((await app.admin.signInLog.query(admin, { protocol: 'smtp', since: at + 3, limit: 50 })).length, 1);
    assert.equal((await app.admin.signInLog.query(admin, { until: at + 2, limit: 50 })).length, 2);
    assert.equal((await app.admin.signInLog.query(admin, { appPasswordId: 'ap_aaaaaaaaaaaaaaaa', username: 'alice@example.com', limit: 50 })).length, 2);
    await assert.rejects(app.admin.signInLog.query(admin, { limit: 0 }), { code: 'PG_INVALID_INPUT' });
  });

  it('says every reason in plain words', () => {
    assert.equal(app.admin.signInLog.describeReason('disabled'), 'Turned off');
    assert.equal(app.admin.signInLog.describeReason('invalid-credentials'), 'Wrong password');
    for (const reason of AUDIT_REASONS) assert.ok(app.admin.signInLog.describeReason(reason).length > 0);
  });

  it('health is for admins, and reads the upstreams\' last success and failure from the sign-in log', async () => {
    await assert.rejects(app.admin.health.status(alice), { code: 'PG_FORBIDDEN' });
    const health = await app.admin.health.status(CLI_ACTOR);
    assert.equal(health.oauthConfigured, false);
    const imap = health.upstreams.find((u) => u.protocol === 'imap')!;
    assert.deepEqual([imap.host, imap.lastSuccessAt, imap.lastFailure?.reason, imap.lastFailure?.detail], ['outlook.office365.com', at, 'upstream-rejected', '535 5.7.3']);
    assert.equal(health.upstreams.find((u) => u.protocol === 'smtp')!.lastSuccessAt, at + 4);
  });
});
