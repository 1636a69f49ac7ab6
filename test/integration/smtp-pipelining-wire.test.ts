import assert from 'node:assert/strict';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { generateSelfSignedCertificate } from '../../src/tls/self-signed-certificate.js';
import { startSmtpHarness, type SmtpHarness } from '../helpers/smtp-harness.js';
import { ScriptedSmtpUpstream } from '../helpers/scripted-smtp-upstream.js';
import { SmtpTranscript } from '../helpers/smtp-transcript.js';

/**
 * What passgate sends upstream, seen on the wire: a scripted upstream that holds its reply to MAIL and notes what
 * arrives meanwhile. With PIPELINING it holds the reply until the RCPT arrives, which only happens if passgate sends
 * the RCPT before it has the MAIL's reply (RFC 2920); without PIPELINING it holds the reply for a while and notes
 * that nothing arrived during it.
 */
async function sendOne(h: SmtpHarness): Promise<{ mailAnsweredMs: number }> {
  const t = await SmtpTranscript.loggedIn(h.ports.submissions!, h.user, h.password);
  try {
    const started = Date.now();
    t.send(`MAIL FROM:<${h.user}>`);
    await t.expect(/^250 /);
    const mailAnsweredMs = Date.now() - started;
    t.send('RCPT TO:<someone@example.net>');
    await t.expect(/^250 /);
    t.send('DATA');
    await t.expect(/^354 /);
    t.send('Subject: wire\r\n\r\nhello\r\n.');
    await t.expect(/^250 2\.0\.0 queued as SCRIPTED/);
    t.send('QUIT');
    await t.expect(/^221 /);
    return { mailAnsweredMs };
  } finally {
    t.close();
  }
}

for (const pipelining of [true, false]) {
  describe(`SMTP upstream on the wire, upstream ${pipelining ? 'with' : 'without'} PIPELINING`, () => {
    // With PIPELINING the upstream holds MAIL's reply until the RCPT arrives (10 s at most: a failure, not a wait).
    const holdMs = pipelining ? 10_000 : 300;
    let upstream: ScriptedSmtpUpstream;
    let h: SmtpHarness;
    let certDir: string;

    before(async () => {
      const pair = await generateSelfSignedCertificate({ commonName: 'scripted.test', dnsNames: ['scripted.test'], ipAddresses: ['127.0.0.1'] });
      upstream = await new ScriptedSmtpUpstream({ tls: pair, pipelining, holdMailMs: holdMs }).start();
      certDir = mkdtempSync(join(tmpdir(), 'passgate-scripted-ca-'));
      writeFileSync(join(certDir, 'ca.pem'), pair.cert);
      h = await startSmtpHarness({
        upstream: { port: upstream.port, tls: 'implicit', ca_file: join(certDir, 'ca.pem'), servername: 'scripted.test' },
      });
    });

    after(async () => {
      await h?.close();
      await upstream?.stop();
      rmSync(certDir, { recursive: true, force: true });
    });

    if (pipelining) {
      it('answers MAIL without waiting for the upstream and sends the RCPT before the MAIL reply arrives', async () => {
        const { mailAnsweredMs } = await sendOne(h);
        assert.deepEqual(upstream.duringHeldMail, ['RCPT'], 'the RCPT reached the upstream while its MAIL reply was held');
        assert.ok(mailAnsweredMs < holdMs, `MAIL answered after ${mailAnsweredMs} ms: passgate did not wait for the held reply`);
        const transaction = upstream.verbs.filter((verb) => ['MAIL', 'RCPT', 'DATA'].includes(verb));
        assert.deepEqual(transaction, ['MAIL', 'RCPT', 'DATA']);
      });
    } else {
      it('sends nothing after MAIL until the upstream answered it', async () => {
        await sendOne(h);
        assert.ok(upstream.verbs.includes('MAIL') && upstream.verbs.includes('RCPT'));
        assert.deepEqual(upstream.duringHeldMail, [], 'nothing reached the upstream while its MAIL reply was held');
      });
    }
  });
}
