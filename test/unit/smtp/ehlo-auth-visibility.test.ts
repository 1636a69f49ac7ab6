import assert from 'node:assert/strict';
import type { AddressInfo } from 'node:net';
import { after, before, describe, it } from 'node:test';
import { SMTPServer, type SMTPServerOptions } from 'smtp-server';
import { PromptSmtpServer } from '../../../src/smtp/prompt-smtp-server.js';
import { generateSelfSignedCertificate } from '../../../src/tls/self-signed-certificate.js';
import { SmtpTranscript } from '../../helpers/smtp-transcript.js';

/**
 * The workaround in src/smtp/ehlo-auth-visibility.ts against the real smtp-server: if an upgrade renames the EHLO
 * handler or changes how it replies, the first test fails; the last shows smtp-server alone still needs it.
 */
describe('EHLO offers AUTH only where it is allowed (RFC 3207 §4.2)', () => {
  const servers: SMTPServer[] = [];
  let options: SMTPServerOptions;
  before(async () => {
    const pair = await generateSelfSignedCertificate({ commonName: 'test', dnsNames: ['test'], ipAddresses: ['127.0.0.1'] });
    options = { key: pair.key, cert: pair.cert, name: 'test', authMethods: ['PLAIN', 'LOGIN'], disableReverseLookup: true, logger: false };
  });
  after(async () => Promise.all(servers.map((s) => new Promise((r) => s.close(() => r(undefined))))));

  async function ehlo(server: SMTPServer, upgrade: boolean): Promise<string> {
    servers.push(server);
    await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
    const t = await SmtpTranscript.connect((server.server.address() as AddressInfo).port);
    await t.expect(/^220 /);
    t.send('EHLO client.test');
    let reply = await t.expect(/^250 /m);
    if (upgrade) {
      await t.starttls();
      t.send('EHLO client.test');
      reply = await t.expect(/^250 /m);
    }
    t.close();
    return reply;
  }

  it('before STARTTLS: STARTTLS is offered, AUTH is not', async () => {
    const reply = await ehlo(new PromptSmtpServer(options, (secure) => secure), false);
    assert.match(reply, /^250[- ]STARTTLS\r$/m);
    assert.doesNotMatch(reply, /AUTH/);
  });

  it('after STARTTLS: AUTH PLAIN LOGIN is offered', async () => {
    const reply = await ehlo(new PromptSmtpServer(options, (secure) => secure), true);
    assert.match(reply, /^250[- ]AUTH PLAIN LOGIN\r$/m);
  });

  it('a listed plaintext network sees AUTH without TLS', async () => {
    const reply = await ehlo(new PromptSmtpServer(options, (secure, ip) => secure || ip === '127.0.0.1'), false);
    assert.match(reply, /^250[- ]AUTH PLAIN LOGIN\r$/m);
  });

  it('(smtp-server alone offers AUTH before TLS, which is why the workaround exists)', async () => {
    const reply = await ehlo(new SMTPServer(options), false);
    assert.match(reply, /AUTH PLAIN LOGIN/);
  });
});
