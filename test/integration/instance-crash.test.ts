import assert from 'node:assert/strict';
import { readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import nodemailer from 'nodemailer';
import { parse, stringify } from 'yaml';
import { CLI_ACTOR } from '../../src/core/actor.js';
import { PassgateProcess } from '../chaos/passgate-process.js';
import { startRedis, type TestRedis } from '../helpers/redis-server.js';
import { startSmtpHarness, type SmtpHarness } from '../helpers/smtp-harness.js';
import { plain, SmtpTranscript } from '../helpers/smtp-transcript.js';

/*
 * An instance that crashes (SIGKILL of its process: no graceful stop, nothing flushed) loses nothing another
 * instance on the same Redis should carry on with (docs/scaling.md): the brute-force block it tripped, the sign-in
 * records and last use of its logins, the access token it fetched. Instance A is `passgate serve` in its own
 * process; instance B is the harness's passgate, in this process, on the same config and Redis (issue 21).
 */
describe('an instance killed with SIGKILL: the others carry on with what it did', () => {
  let redis: TestRedis;
  let h: SmtpHarness;
  let a: PassgateProcess;
  before(async () => {
    redis = await startRedis({ own: true });
    h = await startSmtpHarness({
      config: {
        redis: { url: redis.url, key_prefix: redis.prefix },
        rate_limit: { pair: { max_failures: 2, block_seconds: 600, max_block_seconds: 600 } },
      },
    });
    // The same config, logging at info: PassgateProcess reads its ports from the 'passgate started' line.
    const config = parse(readFileSync(h.tc.file, 'utf8')) as Record<string, unknown>;
    const file = join(h.tc.dir, 'instance-a.yaml');
    writeFileSync(file, stringify({ ...config, log: { level: 'info' } }), { mode: 0o600 });
    a = await PassgateProcess.start(file, h.tc.dir, join(h.tc.dir, 'instance-a.log'));
  });
  after(async () => {
    await a?.kill();
    await h?.close();
    await redis?.close();
  });

  it('keeps the block, the sign-in records, the last use and the token of the killed instance', async () => {
    // On A: a message sent with the app password, and two wrong passwords for another name from this address.
    const info = await nodemailer
      .createTransport({ host: '127.0.0.1', port: a.ports.submissions, secure: true, auth: { user: h.user, pass: h.password }, tls: { rejectUnauthorized: false } })
      .sendMail({ envelope: { from: h.user, to: ['boss@example.org'] }, raw: Buffer.from('Subject: before the crash\r\n\r\nhi\r\n') });
    assert.match(info.response, /^250 /);
    for (const n of [1, 2]) {
      const t = await SmtpTranscript.connect(a.ports.submissions, { tls: true });
      await t.expect(/^220 /);
      t.send('EHLO client.test');
      await t.expect(/^250 /m);
      t.send(`AUTH PLAIN ${plain('victim@example.com', `wrong-password-${n}`)}`);
      await t.expect(/^535 /);
      t.close();
    }
    await a.kill();
    assert.equal(a.exited?.signal, 'SIGKILL');
    const tokensIssued = h.oauth.issuedAccessTokens().length;

    // On B: the block A tripped holds, A's logins are in the sign-in log, the password's last use moved.
    assert.equal((await h.app.limiter.check({ username: 'victim@example.com', ip: '127.0.0.1', trusted: false })).blocked, true);
    const records = await h.app.audit.query({ limit: 20 });
    const logins = records.filter((e) => e.action === 'login');
    assert.ok(logins.some((e) => e.username === h.user && e.reason === 'ok'), 'the successful login on A');
    assert.equal(logins.filter((e) => e.username === 'victim@example.com').length, 2, 'both failures on A');
    const [view] = await h.app.admin.appPasswords.list(CLI_ACTOR, { username: h.user });
    assert.ok(view?.lastUsedAt, 'last use recorded by A');

    // B sends with the token already stored: no new token request.
    const viaB = await nodemailer
      .createTransport({ host: '127.0.0.1', port: h.ports.submissions, secure: true, auth: { user: h.user, pass: h.password }, tls: { rejectUnauthorized: false } })
      .sendMail({ envelope: { from: h.user, to: ['boss@example.org'] }, raw: Buffer.from('Subject: after the crash\r\n\r\nhi\r\n') });
    assert.match(viaB.response, /^250 /);
    assert.equal(h.oauth.issuedAccessTokens().length, tokensIssued, 'the stored token serves B: no new token request');
    assert.deepEqual(h.upstream.deliveries.map((d) => d.raw?.toString().split('\r\n')[0]), ['Subject: before the crash', 'Subject: after the crash']);
  });
});
