import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { ImapFlow } from 'imapflow';
import { CLI_ACTOR } from '../../src/core/actor.js';
import { DovecotServer } from '../helpers/dovecot-server.js';
import { GraphServer } from '../helpers/graph-server.js';
import { TestOAuthServer } from '../helpers/oauth-server.js';
import { startSmtpHarness, type SmtpHarness } from '../helpers/smtp-harness.js';
import { SmtpTranscript } from '../helpers/smtp-transcript.js';

/**
 * Issue 20, the whole way round with real parts: a device's message goes in over SMTP, out through Graph sendMail
 * (the stand-in checks the bearer token at the OAuth server), into the same Dovecot mailboxes the IMAP tests read,
 * and is read back through passgate's IMAP gateway (XOAUTH2 to Dovecot) byte for byte: the To recipient's copy is
 * exactly what the device sent (no Bcc line), and the envelope-only recipient got the same message as Bcc.
 */
describe('Graph transport into Dovecot, read back over IMAP through passgate', () => {
  let oauth: TestOAuthServer;
  let dovecot: DovecotServer;
  let graph: GraphServer;
  let h: SmtpHarness;
  let caDir: string;
  const users = ['alice@example.org', 'hidden@example.net'];

  before(async () => {
    oauth = await new TestOAuthServer().start();
    dovecot = await DovecotServer.start({ introspectionUrl: oauth.introspectionEndpoint, users });
    graph = await new GraphServer(oauth).start();
    graph.onDeliver = async (delivery) => {
      for (const to of delivery.recipients) await dovecot.deliver(to, delivery.visible!);
    };
    caDir = mkdtempSync(join(tmpdir(), 'passgate-graph-dovecot-'));
    writeFileSync(join(caDir, 'ca.pem'), dovecot.cert);
    h = await startSmtpHarness({
      oauthServer: oauth,
      upstream: { transport: 'graph', graph: { base_url: graph.baseUrl } },
      config: {
        imap: {
          enabled: true,
          max_connections_per_ip: 1000,
          listeners: [{ name: 'imaps', host: '127.0.0.1', port: 0, tls: 'implicit' }],
          upstream: { host: '127.0.0.1', port: dovecot.imapsPort, tls: 'implicit', ca_file: join(caDir, 'ca.pem'), servername: 'localhost' },
        },
      },
    });
  });

  after(async () => {
    await h?.close();
    await graph?.stop();
    await dovecot?.stop();
    await oauth?.stop();
    if (caDir) rmSync(caDir, { recursive: true, force: true });
  });

  async function readAll(user: string): Promise<Buffer[]> {
    const { password } = await h.app.admin.appPasswords.create(CLI_ACTOR, { username: user, name: 'reader' });
    const client = new ImapFlow({ host: '127.0.0.1', port: h.services.imap!.ports().imaps!, secure: true, auth: { user, pass: password }, tls: { rejectUnauthorized: false }, logger: false });
    await client.connect();
    try {
      await client.mailboxOpen('INBOX', { readOnly: true });
      const out: Buffer[] = [];
      for await (const m of client.fetch('1:*', { source: true })) out.push(m.source!);
      return out;
    } finally {
      await client.logout();
    }
  }

  it('every envelope recipient reads the message back byte for byte; the Bcc recipient is never shown', async () => {
    const sent = Buffer.from(
      `From: Scanner <scanner@example.com>\r\nTo: Alice <alice@example.org>\r\nSubject: scan ${randomBytes(4).toString('hex')}\r\nMIME-Version: 1.0\r\nContent-Type: text/plain; charset=utf-8\r\n\r\nGrüße, the scanner.\r\n..a line that starts with a dot\r\n`,
      'utf8',
    );
    const t = await SmtpTranscript.loggedIn(h.ports.submissions!, h.user, h.password);
    try {
      t.send(`MAIL FROM:<${h.user}>`);
      await t.expect(/^250 /);
      for (const r of users) {
        t.send(`RCPT TO:<${r}>`);
        await t.expect(/^250 /);
      }
      t.send('DATA');
      await t.expect(/^354 /);
      // Dot-stuffed on the wire (RFC 5321 §4.5.2): the line ".a line" is sent as "..a line".
      t.write(Buffer.from(sent.toString('utf8').replace(/\r\n\.\./, '\r\n...'), 'utf8'));
      t.write(Buffer.from('.\r\n'));
      assert.match((await t.expect(/^\d{3} /, 30_000)).trim(), /^250 2\.0\.0 OK, accepted by Microsoft Graph \(request-id /);
    } finally {
      t.close();
    }
    for (const user of users) {
      const messages = await readAll(user);
      assert.equal(messages.length, 1, user);
      assert.ok(messages[0]!.equals(sent), `${user} reads exactly what the device sent:\n${messages[0]!.toString()}`);
    }
    assert.deepEqual(graph.delivered.at(-1)!.bcc, ['hidden@example.net'], 'Graph got the envelope-only recipient as Bcc');
  });
});
