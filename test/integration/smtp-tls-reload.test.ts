import assert from 'node:assert/strict';
import { createHash } from 'node:crypto';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { generateSelfSignedCertificate } from '../../src/tls/self-signed-certificate.js';
import { startSmtpHarness, type SmtpHarness } from '../helpers/smtp-harness.js';
import { SmtpTranscript } from '../helpers/smtp-transcript.js';

/** The certificate a client sees: STARTTLS to 127.0.0.1 sends no SNI, implicit TLS likewise. */
async function servedFingerprint(port: number, starttls: boolean): Promise<string> {
  const t = await SmtpTranscript.connect(port, { tls: !starttls });
  await t.expect(/^220 /);
  if (starttls) {
    t.send('EHLO client.test');
    await t.expect(/^250 /m);
    await t.starttls();
  }
  const fingerprint = createHash('sha256').update(t.peerCertificateDer()).digest('hex');
  t.close();
  return fingerprint;
}

describe('SMTP listeners serve a renewed certificate without a restart (clients without SNI too)', () => {
  let h: SmtpHarness;
  let dir: string;
  const fingerprint = (pem: string) => createHash('sha256').update(Buffer.from(pem.replace(/-----[^-]+-----|\s/g, ''), 'base64')).digest('hex');

  before(async () => {
    dir = mkdtempSync(join(tmpdir(), 'passgate-reload-'));
    const first = await generateSelfSignedCertificate({ commonName: 'mail.example.test', dnsNames: ['mail.example.test'] });
    writeFileSync(join(dir, 'cert.pem'), first.cert);
    writeFileSync(join(dir, 'key.pem'), first.key);
    h = await startSmtpHarness({ tls: { certificates: [{ cert_file: join(dir, 'cert.pem'), key_file: join(dir, 'key.pem') }], watch: false } });
    assert.equal(await servedFingerprint(h.ports.submission!, true), fingerprint(first.cert));
  });
  after(async () => {
    await h.close();
    rmSync(dir, { recursive: true, force: true });
  });

  it('after reload (what SIGHUP does), STARTTLS and implicit TLS present the new certificate', async () => {
    const renewed = await generateSelfSignedCertificate({ commonName: 'mail.example.test', dnsNames: ['mail.example.test'] });
    writeFileSync(join(dir, 'cert.pem'), renewed.cert);
    writeFileSync(join(dir, 'key.pem'), renewed.key);
    assert.equal(await h.services.tls.reload(), true);
    assert.equal(await servedFingerprint(h.ports.submission!, true), fingerprint(renewed.cert));
    assert.equal(await servedFingerprint(h.ports.submissions!, false), fingerprint(renewed.cert));
  });
});
