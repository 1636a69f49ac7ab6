import assert from 'node:assert/strict';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { generateSelfSignedCertificate } from '../../src/tls/self-signed-certificate.js';
import { startRedis, type TestRedis } from '../helpers/redis-server.js';
import { startSmtpHarness, type SmtpHarness } from '../helpers/smtp-harness.js';
import { ScriptedSmtpUpstream } from '../helpers/scripted-smtp-upstream.js';
import { SmtpTranscript } from '../helpers/smtp-transcript.js';

/**
 * Issue 17, "Continuous-error throttling": Exchange Online throttles a mailbox whose submissions keep failing with
 * the same 5.2.251-5.2.255 error. Two passgate instances share Redis; the scripted upstream refuses one recipient
 * at RCPT (550 5.2.254) and SendAs after DATA (554 5.2.252). After `threshold` refusals, the same submission is
 * refused by passgate itself, on either instance, without reaching the upstream, with the same code and a text
 * that says why; it is counted in passgate_smtp_continuous_error_refusals_total and in the message trace.
 */
describe('continuous-error throttling, shared by two instances through Redis', () => {
  let upstream: ScriptedSmtpUpstream;
  let redis: TestRedis;
  let a: SmtpHarness;
  let b: SmtpHarness;
  let certDir: string;
  const sendAsDenied = '554 5.2.252 SendAsDenied; scanner@example.com not allowed to send as boss@example.com';

  before(async () => {
    const pair = await generateSelfSignedCertificate({ commonName: 'scripted.test', dnsNames: ['scripted.test'], ipAddresses: ['127.0.0.1'] });
    upstream = await new ScriptedSmtpUpstream({
      tls: pair,
      reply: (verb, line) => (verb === 'RCPT' && /full@example\.org/i.test(line) ? '550 5.2.254 Recipient mailbox full' : undefined),
      dataReply: (message) => (/^From: boss@example\.com/m.test(message) ? sendAsDenied : undefined),
    }).start();
    certDir = mkdtempSync(join(tmpdir(), 'passgate-scripted-ca-'));
    writeFileSync(join(certDir, 'ca.pem'), pair.cert);
    redis = await startRedis();
    const over = {
      upstream: { port: upstream.port, tls: 'implicit', ca_file: join(certDir, 'ca.pem'), servername: 'scripted.test' },
      smtp: { continuous_errors: { threshold: 2, cool_down_seconds: 600 } },
      config: { redis: { url: redis.url, key_prefix: redis.prefix } },
    };
    a = await startSmtpHarness(over);
    b = await startSmtpHarness(over);
  });

  after(async () => {
    await a?.close();
    await b?.close();
    await redis?.close();
    await upstream?.stop();
    rmSync(certDir, { recursive: true, force: true });
  });

  const rcpts = () => upstream.lines.filter((l) => /^RCPT /i.test(l.line)).length;
  const refusals = async (h: SmtpHarness) => {
    const values = (await h.app.metrics.smtpContinuousErrorRefusals.get()).values;
    return Object.fromEntries(values.map((v) => [v.labels.code, v.value]));
  };

  /** One transaction: the RCPT reply, and the final reply when the RCPT was accepted. */
  async function submit(h: SmtpHarness, recipient: string, from = h.user): Promise<{ rcpt: string; data?: string }> {
    const t = await SmtpTranscript.loggedIn(h.ports.submissions!, h.user, h.password);
    try {
      t.send(`MAIL FROM:<${h.user}>`);
      await t.expect(/^250 /);
      t.send(`RCPT TO:<${recipient}>`);
      const rcpt = (await t.expect(/^\d{3} /)).trim();
      if (!rcpt.startsWith('250')) return { rcpt };
      t.send('DATA');
      await t.expect(/^354 /);
      t.write(Buffer.from(`From: ${from}\r\nSubject: scan\r\n\r\nscan\r\n.\r\n`));
      return { rcpt, data: (await t.expect(/^\d{3} /)).trim() };
    } finally {
      t.close();
    }
  }

  it('at RCPT: two 5.2.254 refusals on instance A, then the same submission is refused locally on A and B', async () => {
    assert.equal((await submit(a, 'full@example.org')).rcpt, '550 5.2.254 Recipient mailbox full');
    assert.equal((await submit(b, 'full@example.org')).rcpt, '550 5.2.254 Recipient mailbox full');
    const asked = rcpts();
    for (const h of [a, b]) {
      const { rcpt } = await submit(h, 'full@example.org');
      assert.match(rcpt, /^550 5\.2\.254 Refused by passgate, not sent upstream: the upstream kept refusing this sender and recipient with 5\.2\.254; held back for 10 min to protect the mailbox from Exchange Online's continuous-error throttling$/);
    }
    assert.equal(rcpts(), asked, 'the held submissions never reached the upstream');
    assert.deepEqual([await refusals(a), await refusals(b)], [{ '5.2.254': 1 }, { '5.2.254': 1 }]);
    // Another recipient of the same sender is not held.
    assert.match((await submit(a, 'someone@example.org')).data!, /^250 /);
    const [record] = await a.app.messageLog.query({ username: a.user, result: 'refused', limit: 1 });
    assert.deepEqual(record?.recipients, ['full@example.org']);
    assert.match(record?.detail ?? '', /held back after continuous 5\.2\.254 refusals upstream/);
  });

  it('after DATA (SendAs denied, 5.2.252): counted per recipient, then refused locally at RCPT', async () => {
    assert.equal((await submit(a, 'boss-list@example.org', 'boss@example.com')).data, sendAsDenied);
    assert.equal((await submit(b, 'boss-list@example.org', 'boss@example.com')).data, sendAsDenied);
    const { rcpt } = await submit(b, 'boss-list@example.org', 'boss@example.com');
    assert.match(rcpt, /^554 5\.2\.252 Refused by passgate, not sent upstream/);
    assert.equal((await refusals(b))['5.2.252'], 1);
  });
});
