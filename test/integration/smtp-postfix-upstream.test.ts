import assert from 'node:assert/strict';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { generateSelfSignedCertificate } from '../../src/tls/self-signed-certificate.js';
import { BDAT_CHUNK_BYTES } from '../../src/upstream/smtp/upstream-smtp-session.js';
import { TestOAuthServer } from '../helpers/oauth-server.js';
import { PostfixServer } from '../helpers/postfix-server.js';
import { skipWithout } from '../helpers/required-tool.js';
import { startSmtpHarness, type SmtpHarness } from '../helpers/smtp-harness.js';
import { dotStuff, SmtpTranscript } from '../helpers/smtp-transcript.js';

/**
 * Issue 22 against a real provider-like upstream that offers CHUNKING: Postfix as a submission server (STARTTLS,
 * AUTH XOAUTH2 through Dovecot SASL against the test OAuth server), delivering each message into a file the test
 * reads back. passgate sends the body with BDAT; the bytes delivered are the bytes the client sent (8-bit and lines
 * starting with "." included); Postfix's refusals reach the client as its final reply; a client that breaks off in
 * the middle of a chunk gets nothing delivered. The same with CHUNKING hidden: DATA, and a refused DATA.
 */

/** 8-bit lines (every byte but NUL, CR, LF: passgate refuses those), some starting with ".". */
function eightBitBody(subject: string, lines: number): Buffer {
  const parts: Buffer[] = [Buffer.from(`Subject: ${subject}\r\nContent-Type: text/plain; charset=iso-8859-1\r\nContent-Transfer-Encoding: 8bit\r\n\r\n`)];
  const bytes = Array.from({ length: 256 }, (_, i) => i).filter((b) => b !== 0 && b !== 0x0a && b !== 0x0d);
  for (let i = 0; i < lines; i++) {
    parts.push(Buffer.from(bytes.slice(i % 7, (i % 7) + 70).map((b, j) => (j === 0 && i % 3 === 0 ? 0x2e : b))), Buffer.from('\r\n'));
  }
  parts.push(Buffer.from('.\r\n..\r\nend\r\n'));
  return Buffer.concat(parts);
}

/**
 * Postfix keeps a message with LF line ends and its pipe delivers it so: the bytes the client meant, with each CRLF
 * an LF (the bodies here have no bare CR or LF, so nothing is lost by comparing that way).
 */
const asDelivered = (body: Buffer): Buffer => Buffer.from(body.toString('latin1').replace(/\r\n/g, '\n'), 'latin1');

/** The delivered message without the Received header Postfix puts on top (and its folded lines). */
function withoutReceived(raw: Buffer): Buffer {
  const text = raw.toString('latin1');
  const match = /^Received: [^\n]*(?:\n[ \t][^\n]*)*\n/.exec(text);
  assert.ok(match, `a Received header on top: ${JSON.stringify(text.slice(0, 200))}`);
  return Buffer.from(text.slice(match[0].length), 'latin1');
}

async function send(h: SmtpHarness, body: Buffer, recipient = 'someone@example.net'): Promise<string> {
  return SmtpTranscript.sendMessage(h.ports.submissions!, h.user, h.password, body, recipient);
}

/** Resolves when passgate has an upstream reply to `command` (its command-duration metric is observed). */
function upstreamReplied(h: SmtpHarness, command: string): Promise<void> {
  const histogram = h.app.metrics.registry.getSingleMetric('passgate_upstream_command_duration_seconds') as unknown as {
    observe: (labels: Record<string, string>, value: number) => void;
  };
  const observe = histogram.observe;
  return new Promise((resolve, reject) => {
    const timer = setTimeout(() => {
      histogram.observe = observe;
      reject(new Error(`no upstream reply to ${command} within 10 s`));
    }, 10_000);
    histogram.observe = function (labels, value) {
      observe.call(this, labels, value);
      if (labels.command !== command) return;
      histogram.observe = observe;
      clearTimeout(timer);
      resolve();
    };
  });
}

const queueId = (reply: string): string => {
  const id = /queued as ([0-9A-F]+)/.exec(reply)?.[1];
  assert.ok(id, `a queue id in ${JSON.stringify(reply)}`);
  return id;
};

/** Postfix's master starts as root (CI runs as root); elsewhere, without root, the tests say why they skip. */
const skip = skipWithout('/usr/sbin/postconf', ['mail_version'], 'Postfix is the upstream that offers CHUNKING') || (process.getuid?.() === 0 ? false : 'PostfixServer needs root');

for (const chunking of [true, false]) {
  describe(`passgate → Postfix ${chunking ? 'with CHUNKING (BDAT)' : 'with CHUNKING hidden (DATA)'}`, { skip }, () => {
    let oauth: TestOAuthServer;
    let postfix: PostfixServer;
    let h: SmtpHarness;
    let certDir: string;

    before(async () => {
      oauth = await new TestOAuthServer().start();
      const pair = await generateSelfSignedCertificate({ commonName: 'postfix.test', dnsNames: ['postfix.test'], ipAddresses: ['127.0.0.1'] });
      certDir = mkdtempSync(join(tmpdir(), 'passgate-postfix-ca-'));
      writeFileSync(join(certDir, 'ca.pem'), pair.cert);
      writeFileSync(join(certDir, 'header_checks'), '/^Subject: refuse me/ REJECT 5.7.1 Refused by the provider policy\n');
      postfix = await PostfixServer.start({
        introspectionUrl: oauth.introspectionEndpoint,
        ...pair,
        extraMainCf: [
          `header_checks = regexp:${join(certDir, 'header_checks')}`,
          // DATA (or the first BDAT) refused for one recipient: the provider refuses the message itself.
          'smtpd_data_restrictions = check_recipient_access inline:{ { data-refused@example.net = REJECT 5.7.1 No message for this one } }',
          ...(chunking ? [] : ['smtpd_discard_ehlo_keywords = chunking']),
        ],
      });
      h = await startSmtpHarness({ oauthServer: oauth, upstream: { port: postfix.port, tls: 'starttls', ca_file: join(certDir, 'ca.pem'), servername: 'postfix.test' } });
    });

    after(async () => {
      await h?.close();
      await postfix?.stop();
      await oauth?.stop();
      rmSync(certDir, { recursive: true, force: true });
    });

    it('delivers the 8-bit bytes the client sent, lines starting with "." included', async () => {
      const body = eightBitBody('8bit', 300);
      const reply = await send(h, body);
      assert.match(reply, /^250 2\.0\.0 Ok: (?:\d+ bytes )?queued as /);
      assert.deepEqual(withoutReceived(await postfix.delivery(queueId(reply))), asDelivered(body));
    });

    it(`delivers a message of ${(BDAT_CHUNK_BYTES * 2.5) / 1024} KiB whole`, async () => {
      const body = eightBitBody('big', Math.ceil((BDAT_CHUNK_BYTES * 2.5) / 72));
      const reply = await send(h, body);
      assert.match(reply, /^250 2\.0\.0 Ok: (?:\d+ bytes )?queued as /);
      assert.deepEqual(withoutReceived(await postfix.delivery(queueId(reply))), asDelivered(body));
    });

    it("gives the client the provider's refusal of the message as its final reply", async () => {
      const reply = await send(h, eightBitBody('refuse me', 5));
      assert.match(reply, /^550 5\.7\.1 Refused by the provider policy/);
    });

    it(`gives the client the provider's refusal of ${chunking ? 'the first BDAT' : 'DATA'} as its final reply`, async () => {
      const reply = await send(h, eightBitBody('no data', 5), 'data-refused@example.net');
      assert.match(reply, /^554 5\.7\.1 .*No message for this one/);
    });

    it('delivers nothing when the client breaks off in the middle of the message', async () => {
      const delivered = (await postfix.deliveries()).length;
      const t = await SmtpTranscript.loggedIn(h.ports.submissions!, h.user, h.password);
      t.send(`MAIL FROM:<${h.user}>`);
      await t.expect(/^250 /);
      t.send('RCPT TO:<cut@example.net>');
      await t.expect(/^250 /);
      // The client leaves once Postfix has taken part of the message: a whole chunk (BDAT) or the 354 (DATA), which
      // may come before the client's own 354 is read: watched from before DATA.
      const underway = upstreamReplied(h, chunking ? 'BDAT' : 'DATA');
      t.send('DATA');
      await t.expect(/^354 /);
      t.write(dotStuff(eightBitBody('cut', Math.ceil((BDAT_CHUNK_BYTES * 1.5) / 72))));
      await underway;
      t.close();
      await postfix.waitForLog(chunking ? /lost connection after BDAT/ : /lost connection after DATA/);
      assert.equal((await postfix.deliveries()).length, delivered, 'nothing delivered');
    });

    it(`used ${chunking ? 'BDAT, never DATA' : 'DATA, never BDAT'} (Postfix's command counts per session)`, async () => {
      await h.close(); // the pooled upstream sessions QUIT: Postfix logs each session's commands
      const log = await postfix.waitForLog(/disconnect from .* quit=1/);
      const sessions = log.split('\n').filter((line) => /disconnect from .* mail=/.test(line));
      assert.ok(sessions.length > 0);
      for (const line of sessions) assert.match(line, chunking ? /bdat=\d/ : /data=\d/, line);
      for (const line of sessions) assert.doesNotMatch(line, chunking ? / data=/ : /bdat=/, line);
    });
  });
}
