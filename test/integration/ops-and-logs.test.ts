import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import { ImapFlow } from 'imapflow';
import nodemailer from 'nodemailer';
import { createLogger } from '../../src/observability/logger.js';
import { startImapHarness, type ImapHarness } from '../helpers/imap-harness.js';
import { startSmtpHarness, type SmtpHarness } from '../helpers/smtp-harness.js';
import { TEST_TOKEN_KEY } from '../helpers/oauth-test-app.js';

describe('ops endpoints and logs after a full set of SMTP and IMAP sessions', () => {
  const logs: string[] = [];
  const logger = () => createLogger('trace', { write: (line: string) => void logs.push(line) });
  let smtp: SmtpHarness;
  let imap: ImapHarness;

  before(async () => {
    smtp = await startSmtpHarness({ logger: logger() });
    imap = await startImapHarness({ logger: logger() });
    const transport = (pass: string) =>
      nodemailer.createTransport({ host: '127.0.0.1', port: smtp.ports.submissions, secure: true, auth: { user: smtp.user, pass }, tls: { rejectUnauthorized: false } });
    await transport(smtp.password).sendMail({ envelope: { from: smtp.user, to: ['boss@example.org'] }, raw: Buffer.from('Subject: logged\r\n\r\nhi\r\n') });
    await assert.rejects(transport('wrong-passw-ordx-xxxx').sendMail({ envelope: { from: smtp.user, to: ['boss@example.org'] }, raw: 'x' }));
    const client = new ImapFlow({ host: '127.0.0.1', port: imap.ports.imaps!, secure: true, auth: { user: imap.user, pass: imap.password }, tls: { rejectUnauthorized: false }, logger: false });
    await client.connect();
    await client.append('INBOX', Buffer.from('Subject: appended\r\n\r\nbody\r\n'));
    await client.logout();
    const bad = new ImapFlow({ host: '127.0.0.1', port: imap.ports.imaps!, secure: true, auth: { user: imap.user, pass: 'abcd-efgh-ijkl-mnop' }, tls: { rejectUnauthorized: false }, logger: false });
    await assert.rejects(bad.connect());
    // Each session's `session closed` line is written once its connection has closed.
    const deadline = Date.now() + 20_000;
    while (logs.join('').split('"msg":"session closed"').length - 1 < 4 && Date.now() < deadline) await new Promise((r) => setTimeout(r, 50));
  });
  after(async () => {
    await smtp.close();
    await imap.close();
  });

  it('serves Prometheus metrics with what happened, /healthz and /readyz', async () => {
    const base = `http://127.0.0.1:${smtp.services.ops!.port}`;
    const metrics = await (await fetch(`${base}/metrics`)).text();
    assert.match(metrics, /passgate_auth_attempts_total\{protocol="smtp",result="success",reason="ok"\} [1-9]/);
    assert.match(metrics, /passgate_auth_attempts_total\{protocol="smtp",result="failure",reason="invalid-credentials"\} [1-9]/);
    assert.match(metrics, /passgate_smtp_messages_total\{result="accepted"\} 1/);
    assert.match(metrics, /passgate_token_requests_total\{result="success"\} 1/);
    assert.match(metrics, /passgate_tls_certificate_expiry_timestamp_seconds\{name="[^"]+"\} \d{10}/);
    assert.match(metrics, /passgate_argon2_queue_length 0/);
    const imapMetrics = await (await fetch(`http://127.0.0.1:${imap.services.ops!.port}/metrics`)).text();
    assert.match(imapMetrics, /passgate_imap_proxied_bytes_total\{direction="client-to-upstream"\} [1-9]/);
    assert.match(imapMetrics, /passgate_sessions_closed_total\{protocol="imap",reason="[a-z-]+"\} [1-9]/);
    assert.equal((await fetch(`${base}/healthz`)).status, 200);
    const ready = await fetch(`${base}/readyz`);
    assert.equal(ready.status, 200);
    const body = (await ready.json()) as { ready: boolean; checks: { store: string }; tokens: { key: string; state: string }[] };
    assert.deepEqual([body.ready, body.checks.store, body.tokens[0]?.key, body.tokens[0]?.state], [true, 'ok', 'app', 'ok']);
    assert.equal((await fetch(`${base}/nope`)).status, 404);
  });

  it('logs one line per session end, and never a password, token or secret', () => {
    const text = logs.join('');
    assert.ok(logs.length > 20, `only ${logs.length} log lines`);
    assert.match(text, /"protocol":"imap".*"user":"reader@example.com".*"bytesIn":\d+.*"msg":"session closed"/);
    assert.match(text, /"protocol":"smtp".*"user":"scanner@example.com".*"messages":1.*"msg":"session closed"/);
    assert.match(text, /"reason":"invalid-credentials".*"msg":"login refused"/);
    const secrets = [
      smtp.password,
      imap.password,
      'wrong-passw-ordx-xxxx',
      'abcd-efgh-ijkl-mnop',
      ...smtp.oauth.issuedAccessTokens(),
      ...imap.oauth.issuedAccessTokens(),
      smtp.oauth.clientSecret,
      smtp.app.config.security.pepper,
      TEST_TOKEN_KEY,
    ];
    const forms = secrets.flatMap((s) => [
      s,
      s.replace(/-/g, ''),
      Buffer.from(`\0${smtp.user}\0${s}`).toString('base64'),
      Buffer.from(`\0${imap.user}\0${s}`).toString('base64'),
      Buffer.from(s).toString('base64'),
    ]);
    assert.ok(smtp.oauth.issuedAccessTokens().length > 0 && imap.oauth.issuedAccessTokens().length > 0);
    for (const form of forms) assert.ok(!text.includes(form), `a secret reached the logs: ${form.slice(0, 6)}…`);
  });
});
