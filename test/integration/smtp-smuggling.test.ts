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
 * SMTP smuggling (SEC Consult, 2023): an end-of-data sequence that passgate does not take for one, but an upstream
 * might, followed by a second transaction. Every published variant goes through passgate, and the test reads what
 * the upstream received on the wire: no bare CR, no bare LF, exactly one end of data per message, no second MAIL.
 */
const VARIANTS: Record<string, string> = {
  '\\n.\\n': '\n.\n',
  '\\n.\\r\\n': '\n.\r\n',
  '\\r.\\r': '\r.\r',
  '\\r.\\r\\n': '\r.\r\n',
  '\\r\\n.\\r': '\r\n.\r',
  '\\r\\n.\\n': '\r\n.\n',
  '\\n.\\r': '\n.\r',
};

const SMUGGLED = 'MAIL FROM:<ceo@example.com>\r\nRCPT TO:<victim@example.org>\r\nDATA\r\nSubject: smuggled\r\n\r\nsmuggled\r\n';

/** Offsets of CRs not followed by LF and LFs not preceded by CR. */
function bareLineEnds(bytes: string): number[] {
  const found: number[] = [];
  for (let i = 0; i < bytes.length; i++) {
    if (bytes[i] === '\r' && bytes[i + 1] !== '\n') found.push(i);
    if (bytes[i] === '\n' && bytes[i - 1] !== '\r') found.push(i);
  }
  return found;
}

describe('SMTP smuggling: what the upstream receives', () => {
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

  async function send(body: string): Promise<string> {
    const t = await SmtpTranscript.loggedIn(h.ports.submissions!, h.user, h.password);
    try {
      t.send(`MAIL FROM:<${h.user}>`);
      await t.expect(/^250 /);
      t.send('RCPT TO:<someone@example.net>');
      await t.expect(/^250 /);
      t.send('DATA');
      await t.expect(/^354 /);
      t.write(Buffer.from(`${body}\r\n.\r\n`, 'latin1'));
      const reply = await t.expect(/^\d{3} /);
      t.send('QUIT');
      await t.expect(/^221 /).catch(() => undefined);
      return reply;
    } finally {
      t.close();
    }
  }

  for (const [name, sequence] of Object.entries(VARIANTS)) {
    it(`${name}: one message upstream, its line ends CRLF, the smuggled commands inside it as text`, async () => {
      const before = { messages: upstream.messages.length, mails: upstream.verbs.filter((v) => v === 'MAIL').length };
      const reply = await send(`Subject: variant\r\n\r\nhello${sequence}${SMUGGLED}`);
      assert.match(reply, /^250 2\.0\.0 queued as SCRIPTED/);
      const wire = [...upstream.received.values()].join('');
      assert.deepEqual(bareLineEnds(wire), [], 'no bare CR or LF reached the upstream');
      assert.equal(upstream.messages.length, before.messages + 1, 'one message');
      assert.equal(upstream.verbs.filter((v) => v === 'MAIL').length, before.mails + 1, 'one MAIL command: nothing smuggled');
      const delivered = upstream.messages.at(-1)!;
      assert.match(delivered, /^hello\r\n\.\.\r\nMAIL FROM:<ceo@example\.com>\r\n/m, 'the dot after the normalised line end is stuffed');
    });
  }

  it('NUL: refused after the client\'s final ".", the upstream transaction abandoned before its own', async () => {
    const before = upstream.messages.length;
    const reply = await send(`Subject: nul\r\n\r\nhello\r\n\0.\r\n${SMUGGLED}`);
    assert.match(reply, /^554 5\.6\.0 Message contains NUL characters, not relayed\r\n$/);
    assert.equal(upstream.messages.length, before, 'nothing delivered');
  });

  it('a message of bare LF lines (an old script) is delivered with CRLF lines', async () => {
    const reply = await send('Subject: unix\n\nline one\nline two');
    assert.match(reply, /^250 /);
    assert.equal(upstream.messages.at(-1), 'Subject: unix\r\n\r\nline one\r\nline two\r\n');
  });
});
