import assert from 'node:assert/strict';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { createServer, type Server, type TLSSocket } from 'node:tls';
import { generateSelfSignedCertificate } from '../../src/tls/self-signed-certificate.js';
import { startSmtpHarness, type SmtpHarness } from '../helpers/smtp-harness.js';
import { SmtpTranscript } from '../helpers/smtp-transcript.js';

/**
 * What passgate sends upstream, seen on the wire: a scripted upstream (implicit TLS on loopback) that holds its reply
 * to MAIL and notes what arrives meanwhile. With PIPELINING it holds the reply until the RCPT arrives, which only
 * happens if passgate sends the RCPT before it has the MAIL's reply (RFC 2920); without PIPELINING it holds the
 * reply for a while and notes that nothing arrived during it.
 */
class ScriptedUpstream {
  readonly received: string[] = [];
  /** Commands that arrived while the reply to MAIL was held. */
  readonly duringHeldMail: string[] = [];
  private server: Server | null = null;
  port = 0;

  constructor(
    private readonly tls: { key: string; cert: string },
    private readonly pipelining: boolean,
    private readonly holdMs: number,
  ) {}

  async start(): Promise<this> {
    this.server = createServer(this.tls, (socket) => this.serve(socket));
    await new Promise<void>((resolve) => this.server!.listen(0, '127.0.0.1', resolve));
    this.port = (this.server.address() as { port: number }).port;
    return this;
  }

  async stop(): Promise<void> {
    this.server?.close();
  }

  private serve(socket: TLSSocket): void {
    socket.on('error', () => {});
    const say = (line: string) => socket.write(`${line}\r\n`);
    let buffer = '';
    let inData = false;
    let heldMail: { release: () => void } | null = null;
    say('220 scripted.test ESMTP');
    socket.setEncoding('utf8');
    socket.on('data', (chunk: string) => {
      buffer += chunk;
      let end: number;
      while ((end = buffer.indexOf('\r\n')) >= 0) {
        const line = buffer.slice(0, end);
        buffer = buffer.slice(end + 2);
        if (inData) {
          if (line === '.') {
            inData = false;
            say('250 2.0.0 queued as SCRIPTED');
          }
          continue;
        }
        const verb = line.split(/[ :]/)[0]!.toUpperCase();
        this.received.push(verb);
        if (heldMail) this.duringHeldMail.push(verb);
        switch (verb) {
          case 'EHLO':
            say('250-scripted.test');
            if (this.pipelining) say('250-PIPELINING');
            say('250-AUTH XOAUTH2');
            say('250 8BITMIME');
            break;
          case 'AUTH':
            say('235 2.7.0 accepted');
            break;
          case 'MAIL': {
            const release = () => {
              clearTimeout(timer);
              heldMail = null;
              say('250 2.1.0 sender ok');
            };
            const timer = setTimeout(release, this.holdMs);
            heldMail = { release };
            break;
          }
          case 'RCPT':
            // The RCPT came in while MAIL was unanswered: answer MAIL first, as a pipelining server does.
            heldMail?.release();
            say('250 2.1.5 recipient ok');
            break;
          case 'DATA':
            inData = true;
            say('354 go ahead');
            break;
          case 'QUIT':
            say('221 2.0.0 bye');
            socket.end();
            break;
          default:
            say('250 2.0.0 ok');
        }
      }
    });
  }
}

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
    let upstream: ScriptedUpstream;
    let h: SmtpHarness;
    let certDir: string;

    before(async () => {
      const pair = await generateSelfSignedCertificate({ commonName: 'scripted.test', dnsNames: ['scripted.test'], ipAddresses: ['127.0.0.1'] });
      upstream = await new ScriptedUpstream(pair, pipelining, holdMs).start();
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
        const transaction = upstream.received.filter((verb) => ['MAIL', 'RCPT', 'DATA'].includes(verb));
        assert.deepEqual(transaction, ['MAIL', 'RCPT', 'DATA']);
      });
    } else {
      it('sends nothing after MAIL until the upstream answered it', async () => {
        await sendOne(h);
        assert.ok(upstream.received.includes('MAIL') && upstream.received.includes('RCPT'));
        assert.deepEqual(upstream.duringHeldMail, [], 'nothing reached the upstream while its MAIL reply was held');
      });
    }
  });
}
