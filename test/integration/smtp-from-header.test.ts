import assert from 'node:assert/strict';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { CLI_ACTOR } from '../../src/core/actor.js';
import { generateSelfSignedCertificate } from '../../src/tls/self-signed-certificate.js';
import { startSmtpHarness, type SmtpHarness } from '../helpers/smtp-harness.js';
import { ScriptedSmtpUpstream } from '../helpers/scripted-smtp-upstream.js';
import { SmtpTranscript } from '../helpers/smtp-transcript.js';

/**
 * Issue 17, "The From header": with the check on (per app password, or `smtp.check_from_header`), a message whose
 * From header is neither the mailbox nor an allowed sender is refused after the client's final "." with 550 5.7.1,
 * the upstream transaction abandoned before its own "." (the test reads what the upstream received), and the
 * message trace records the refusal. With it off (the SMTP default) the From header is the upstream's business.
 */
describe('the From header policy', () => {
  let upstream: ScriptedSmtpUpstream;
  let h: SmtpHarness;
  let certDir: string;

  before(async () => {
    const pair = await generateSelfSignedCertificate({ commonName: 'scripted.test', dnsNames: ['scripted.test'], ipAddresses: ['127.0.0.1'] });
    upstream = await new ScriptedSmtpUpstream({ tls: pair }).start();
    certDir = mkdtempSync(join(tmpdir(), 'passgate-scripted-ca-'));
    writeFileSync(join(certDir, 'ca.pem'), pair.cert);
    h = await startSmtpHarness({ upstream: { port: upstream.port, tls: 'implicit', ca_file: join(certDir, 'ca.pem'), servername: 'scripted.test' } });
  });

  after(async () => {
    await h?.close();
    await upstream?.stop();
    rmSync(certDir, { recursive: true, force: true });
  });

  async function send(user: string, password: string, from: string, body = 'hello'): Promise<string> {
    const t = await SmtpTranscript.loggedIn(h.ports.submissions!, user, password);
    try {
      t.send(`MAIL FROM:<${user}>`);
      await t.expect(/^250 /);
      t.send('RCPT TO:<someone@example.net>');
      await t.expect(/^250 /);
      t.send('DATA');
      await t.expect(/^354 /);
      t.write(Buffer.from(`From: ${from}\r\nTo: someone@example.net\r\nSubject: from header\r\n\r\n${body}\r\n.\r\n`));
      const reply = (await t.expect(/^\d{3} /)).trim();
      t.send('QUIT');
      await t.expect(/^221 /).catch(() => undefined);
      return reply;
    } finally {
      t.close();
    }
  }

  it('off (smtp.check_from_header: false, the SMTP default): a spoofed From reaches the upstream', async () => {
    const before = upstream.messages.length;
    assert.match(await send(h.user, h.password, 'CEO <ceo@example.com>'), /^250 /);
    assert.equal(upstream.messages.length, before + 1);
    assert.match(upstream.messages.at(-1)!, /^From: CEO <ceo@example\.com>\r\n/);
  });

  it('on for the password: another From is refused 550 5.7.1 after the final ".", never delivered, traced as refused', async () => {
    const { password, view } = await h.app.admin.appPasswords.create(CLI_ACTOR, {
      username: 'alice@example.com',
      name: 'Scanner',
      policy: { allowedSenders: ['scans@example.com'], checkFromHeader: true },
    });
    const before = { messages: upstream.messages.length, datas: upstream.verbs.filter((v) => v === 'DATA').length };
    const reply = await send('alice@example.com', password, '"alice@example.com" <ceo@example.com>', 'wire the money');
    assert.equal(reply, '550 5.7.1 From header address not allowed for this login, message not relayed');
    assert.equal(upstream.messages.length, before.messages, 'nothing delivered');
    assert.equal(upstream.verbs.filter((v) => v === 'DATA').length, before.datas + 1, 'the upstream transaction had started');
    const wire = [...upstream.received.values()].join('');
    assert.ok(!wire.includes('wire the money'), 'the body never went upstream past the header');
    const [record] = await h.app.messageLog.query({ appPasswordId: view.id, limit: 1 });
    assert.equal(record?.result, 'refused');
    assert.equal(record?.reply, reply);
    assert.match(record?.detail ?? '', /ceo@example\.com not allowed/);

    // The mailbox and an allowed sender pass, whatever the display name.
    assert.match(await send('alice@example.com', password, 'Alice <ALICE@example.com>'), /^250 /);
    assert.match(await send('alice@example.com', password, 'Scanner 3rd floor <scans@example.com>'), /^250 /);
    assert.equal(upstream.messages.length, before.messages + 2);
  });

  it('on by default (smtp.check_from_header: true), off for a password that says so', async () => {
    const strict = await startSmtpHarness({
      smtp: { check_from_header: true },
      upstream: { port: upstream.port, tls: 'implicit', ca_file: join(certDir, 'ca.pem'), servername: 'scripted.test' },
    });
    try {
      const t = await SmtpTranscript.loggedIn(strict.ports.submissions!, strict.user, strict.password);
      t.send(`MAIL FROM:<${strict.user}>`);
      await t.expect(/^250 /);
      t.send('RCPT TO:<someone@example.net>');
      await t.expect(/^250 /);
      t.send('DATA');
      await t.expect(/^354 /);
      t.write(Buffer.from('From: bob@example.com\r\n\r\nhi\r\n.\r\n'));
      await t.expect(/^550 5\.7\.1 From header/);
      t.close();
      const { password } = await strict.app.admin.appPasswords.create(CLI_ACTOR, { username: 'relay@example.com', name: 'Mailer', policy: { checkFromHeader: false } });
      const u = await SmtpTranscript.loggedIn(strict.ports.submissions!, 'relay@example.com', password);
      u.send('MAIL FROM:<relay@example.com>');
      await u.expect(/^250 /);
      u.send('RCPT TO:<someone@example.net>');
      await u.expect(/^250 /);
      u.send('DATA');
      await u.expect(/^354 /);
      u.write(Buffer.from('From: newsletter@example.org\r\n\r\nhi\r\n.\r\n'));
      await u.expect(/^250 /);
      u.close();
    } finally {
      await strict.close();
    }
  });
});
