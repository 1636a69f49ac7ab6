import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { after, before, describe, it } from 'node:test';
import nodemailer from 'nodemailer';
import { CLI_ACTOR } from '../../src/core/actor.js';
import { checkGraphSend } from '../../src/doctor/graph-send-check.js';
import { runDoctor } from '../../src/doctor/doctor.js';
import { createLogger } from '../../src/observability/logger.js';
import { startSmtpHarness, type SmtpHarness } from '../helpers/smtp-harness.js';
import { GraphServer } from '../helpers/graph-server.js';
import { SmtpTranscript } from '../helpers/smtp-transcript.js';

/** A client process run to its end without blocking the event loop (passgate runs in this process). */
function run(command: string, args: string[], env: NodeJS.ProcessEnv): Promise<{ status: number | null; stdout: string; stderr: string }> {
  return new Promise((resolve) => {
    const child = spawn(command, args, { env, timeout: 60_000 });
    let stdout = '';
    let stderr = '';
    child.stdout.on('data', (d: Buffer) => (stdout += d.toString()));
    child.stderr.on('data', (d: Buffer) => (stderr += d.toString()));
    child.on('close', (status) => resolve({ status, stdout, stderr }));
  });
}

const scrape = async (port: number) => (await fetch(`http://127.0.0.1:${port}/metrics`)).text();

/**
 * Issue 20: the same SMTP submission in, Microsoft Graph sendMail out (smtp.upstream.transport: graph), against a
 * Graph stand-in on loopback that checks each bearer token with the local OAuth server (Graph's audience) and keeps
 * what it delivered. Nothing lost (envelope-only recipients go as Bcc), nothing extra (a header recipient not in
 * RCPT TO is refused), the From check on by default, >4 MB through a draft and upload sessions, Graph's errors and
 * Retry-After as SMTP replies, and 4 requests per mailbox at once.
 */
describe('Graph sendMail transport', () => {
  let graph: GraphServer;
  let h: SmtpHarness;
  const logs: string[] = [];
  const logged = () => logs.map((l) => JSON.parse(l) as Record<string, unknown>);

  before(async () => {
    graph = await new GraphServer().start();
    h = await startSmtpHarness({
      upstream: { transport: 'graph', wait_seconds: 20, graph: { base_url: graph.baseUrl } },
      logger: createLogger('info', { write: (line: string) => void logs.push(line) }),
    });
    graph.oauth = h.oauth;
  });

  after(async () => {
    await h?.close();
    await graph?.stop();
  });

  /** One message over a logged-in SMTP session; the final reply. */
  async function submit(rcpts: string[], message: string | Buffer, user = h.user, password = h.password): Promise<string> {
    const t = await SmtpTranscript.loggedIn(h.ports.submissions!, user, password);
    try {
      t.send(`MAIL FROM:<${user}>`);
      await t.expect(/^250 /);
      for (const r of rcpts) {
        t.send(`RCPT TO:<${r}>`);
        await t.expect(/^250 /);
      }
      t.send('DATA');
      await t.expect(/^354 /);
      t.write(Buffer.isBuffer(message) ? message : Buffer.from(message));
      t.write(Buffer.from('.\r\n'));
      const reply = (await t.expect(/^\d{3} /, 60_000)).trim();
      t.send('QUIT');
      await t.expect(/^221 /).catch(() => undefined);
      return reply;
    } finally {
      t.close();
    }
  }

  const mail = (extra = '', body = 'Scan attached.') =>
    `From: Scanner <scanner@example.com>\r\nTo: Alice <alice@example.org>\r\nCc: bob@example.org\r\n${extra}Subject: scan\r\nMessage-ID: <${randomBytes(6).toString('hex')}@scanner>\r\n\r\n${body}\r\n`;

  it('nodemailer: 250 only after Graph\'s 202, with its request-id; envelope-only recipients go as Bcc and are never shown', async () => {
    const before = graph.delivered.length;
    const raw = mail();
    const info = await nodemailer
      .createTransport({ host: '127.0.0.1', port: h.ports.submissions, secure: true, auth: { user: h.user, pass: h.password }, tls: { rejectUnauthorized: false } })
      .sendMail({ envelope: { from: h.user, to: ['alice@example.org', 'bob@example.org', 'hidden@example.net'] }, raw });
    assert.equal(graph.delivered.length, before + 1);
    const d = graph.delivered.at(-1)!;
    assert.match(info.response, new RegExp(`^250 2\\.0\\.0 OK, accepted by Microsoft Graph \\(request-id ${d.requestId}\\)`));
    assert.equal(d.path, 'sendMail');
    assert.equal(d.mailbox, 'scanner@example.com');
    assert.deepEqual(d.recipients.sort(), ['alice@example.org', 'bob@example.org', 'hidden@example.net']);
    assert.deepEqual(d.bcc, ['hidden@example.net']);
    // Byte for byte: what Graph got is the client's message with one Bcc field added at the end of the header.
    const [head, body] = raw.split('\r\n\r\n');
    assert.equal(d.mime!.toString('latin1'), `${head}\r\nBcc: hidden@example.net\r\n\r\n${body}`);
    assert.ok(!d.visible!.toString('latin1').includes('hidden@example.net'), 'the Bcc recipient is never shown to the others');
    const [record] = await h.app.messageLog.query({ limit: 1 });
    assert.equal(record?.result, 'relayed');
    assert.match(record?.reply ?? '', new RegExp(`request-id ${d.requestId}`), 'the message trace carries the request-id');
    assert.equal(record?.queueId, d.requestId, "the trace's queue id is Graph's request-id");
    assert.match(await scrape(h.services.ops!.port), /passgate_smtp_transport_messages_total\{transport="graph",result="accepted"\} [1-9]/);
    // The per-message log line carries Graph's request-id; the session line names the transport.
    assert.ok(logged().some((l) => l.msg === 'graph message sent' && l.requestId === d.requestId && l.transport === 'graph'));
    const deadline = Date.now() + 10_000;
    while (!logged().some((l) => l.msg === 'session closed' && l.transport === 'graph') && Date.now() < deadline) await new Promise((r) => setTimeout(r, 50));
    assert.ok(logged().some((l) => l.msg === 'session closed' && l.transport === 'graph' && l.messages === 1));
    // Never a token in the logs.
    for (const token of h.oauth.issuedAccessTokens()) assert.ok(!logs.join('\n').includes(token), 'an access token was logged');
  });

  it('a header Bcc the client left in never leaks, and a header recipient not in RCPT TO gets nothing: 554 5.5.4', async () => {
    let before = graph.delivered.length;
    assert.match(await submit(['alice@example.org', 'bob@example.org', 'secret@example.net'], mail('Bcc: secret@example.net\r\n')), /^250 2\.0\.0 /);
    assert.equal(graph.delivered.length, before + 1);
    assert.deepEqual(graph.delivered.at(-1)!.bcc, ['secret@example.net']);
    assert.ok(!graph.delivered.at(-1)!.visible!.toString().includes('secret'));
    before = graph.delivered.length;
    const reply = await submit(['alice@example.org'], mail());
    assert.match(reply, /^554 5\.5\.4 A To, Cc or Bcc header address is not among the RCPT TO recipients.*not in RCPT TO: bob@example\.org/);
    assert.equal(graph.delivered.length, before, 'nothing sent');
  });

  it('the From check is on by default with Graph: another From is refused 550 5.7.1 and never reaches Graph', async () => {
    const before = graph.requests.length;
    const reply = await submit(['alice@example.org'], 'From: ceo@example.com\r\nTo: alice@example.org\r\nSubject: x\r\n\r\nwire the money\r\n');
    assert.equal(reply, '550 5.7.1 From header address not allowed for this login, message not relayed');
    assert.equal(graph.requests.length, before, 'no Graph request at all');
  });

  it('over 4 MB: a draft, attachments through an upload session (320 KiB multiples), then send; bytes kept', async () => {
    const big = randomBytes(5 * 1024 * 1024 + 123);
    const small = randomBytes(200_000);
    const b64 = (buf: Buffer) => buf.toString('base64').replace(/.{76}/g, '$&\r\n');
    const message =
      'From: scanner@example.com\r\nTo: alice@example.org\r\nSubject: big scan\r\nMIME-Version: 1.0\r\nContent-Type: multipart/mixed; boundary="BOUND"\r\n\r\n' +
      '--BOUND\r\nContent-Type: text/plain\r\n\r\nTwo files.\r\n' +
      `--BOUND\r\nContent-Type: application/pdf; name="scan.pdf"\r\nContent-Disposition: attachment; filename="scan.pdf"\r\nContent-Transfer-Encoding: base64\r\n\r\n${b64(big)}\r\n` +
      `--BOUND\r\nContent-Type: image/png\r\nContent-Disposition: attachment; filename="small.png"\r\nContent-Transfer-Encoding: base64\r\n\r\n${b64(small)}\r\n` +
      '--BOUND--\r\n';
    const before = graph.delivered.length;
    const reply = await submit(['alice@example.org', 'archive@example.net'], message);
    assert.match(reply, /^250 2\.0\.0 OK, accepted by Microsoft Graph \(request-id /);
    assert.equal(graph.delivered.length, before + 1);
    const d = graph.delivered.at(-1)!;
    assert.equal(d.path, 'draft');
    assert.deepEqual(d.bcc, ['archive@example.net']);
    const pdf = d.attachments.find((a) => a.name === 'scan.pdf')!;
    assert.equal(pdf.via, 'upload');
    assert.equal(pdf.contentType, 'application/pdf');
    assert.ok(pdf.bytes.equals(big), 'the large attachment arrives byte for byte');
    assert.ok(d.mime!.toString().includes('Two files.'));
    assert.ok(graph.requests.some((r) => r.method === 'PUT' && r.status === 200) && graph.requests.some((r) => r.path.endsWith('/send')));
    assert.equal(graph.draftsLeft, 0);

    // A failure after the draft was made (here Graph refusing /send): a 4xx, nothing sent, and no draft left behind.
    graph.failOn('/send', { status: 503, code: 'ServiceNotAvailable', message: 'Service unavailable' });
    const failed = await submit(['alice@example.org', 'archive@example.net'], message);
    assert.match(failed, /^451 4\.7\.0 Microsoft Graph is throttling the mailbox.*503 ServiceNotAvailable/);
    assert.equal(graph.delivered.length, before + 1, 'nothing more delivered');
    assert.equal(graph.draftsLeft, 0, 'the draft was deleted');
    assert.ok(graph.requests.some((r) => r.method === 'DELETE' && r.status === 204));
  });

  it('429 with Retry-After: a 451 that names the wait, and the mailbox is held back without asking Graph again', async () => {
    // Its own mailbox: the hold lasts the whole Retry-After, and the other tests' mailbox is not held.
    const user = 'throttled@example.com';
    const { password } = await h.app.admin.appPasswords.create(CLI_ACTOR, { username: user, name: 'Throttled scanner' });
    const message = 'From: throttled@example.com\r\nTo: alice@example.org\r\nSubject: t\r\n\r\nx\r\n';
    graph.failNext(1, { status: 429, code: 'ApplicationThrottled', message: 'Application is over its MailboxConcurrency limit.', retryAfter: 30 });
    const before = graph.requests.length;
    assert.match(await submit(['alice@example.org'], message, user, password), /^451 4\.7\.0 Microsoft Graph is throttling the mailbox, try again later \(429 ApplicationThrottled.*retry after 30 s; request-id /);
    assert.equal(graph.requests.length, before + 1);
    assert.match(await submit(['alice@example.org'], message, user, password), /^451 4\.7\.0 Microsoft Graph is throttling.*held back for Graph's Retry-After, retry after (2\d|30) s/);
    assert.equal(graph.requests.length, before + 1, 'not asked again within the wait');
  });

  it("maps Graph's errors in the one reply table: ErrorSendAsDenied, MailboxNotEnabledForRESTAPI, access policy, size", async () => {
    const cases: [number, string, string, RegExp][] = [
      [403, 'ErrorSendAsDenied', 'The user account which was used to submit this request does not have the right to send mail on behalf of the specified sending account.', /^550 5\.7\.60 Microsoft Graph refused the From address/],
      [404, 'MailboxNotEnabledForRESTAPI', 'The mailbox is either inactive, soft-deleted, or is hosted on-premise.', /^550 5\.7\.0 Microsoft Graph refused the mailbox: it has no Exchange Online mailbox/],
      [403, 'ErrorAccessDenied', 'Access to OData is disabled: [RAOP] : Blocked by tenant configured AppOnly AccessPolicy settings.', /^550 5\.7\.0 .*application access policy or RBAC scope/],
      [403, 'ErrorAccessDenied', 'Access is denied. Check credentials and try again.', /^550 5\.7\.0 .*Mail\.Send permission or admin consent missing/],
      [413, 'ErrorMessageSizeExceeded', 'The message exceeds the maximum supported size.', /^552 5\.3\.4 Message too big for Microsoft Graph/],
      [507, 'ErrorQuotaExceeded', 'The mailbox quota has been exceeded.', /^452 4\.2\.2 /],
      [503, 'ServiceNotAvailable', 'Service unavailable', /^451 4\.7\.0 Microsoft Graph is throttling/],
      [500, 'InternalServerError', 'An internal server error occurred.', /^451 4\.4\.1 Microsoft Graph unavailable before it accepted the message/],
      [400, 'ErrorInvalidRecipients', 'At least one recipient is not valid.', /^554 5\.6\.0 Microsoft Graph refused the message/],
    ];
    for (const [status, code, message, expected] of cases) {
      graph.failNext(1, { status, code, message });
      const reply = await submit(['alice@example.org', 'bob@example.org'], mail());
      assert.match(reply, expected, code);
      assert.match(reply, new RegExp(`${code}.*request-id [0-9a-f-]{36}\\)$`), 'Graph\'s code and request-id are in the reply');
    }
  });

  it('a cached token Graph no longer takes (401) is dropped and the message sent with a fresh one', async () => {
    assert.match(await submit(['alice@example.org', 'bob@example.org'], mail()), /^250 /); // a Graph token is cached now
    const before = { delivered: graph.delivered.length, grants: h.oauth.counts.client_credentials };
    h.oauth.forgetAccessTokens(); // every token issued so far is now refused, the cached Graph token included
    assert.match(await submit(['alice@example.org', 'bob@example.org'], mail()), /^250 2\.0\.0 OK, accepted by Microsoft Graph/);
    assert.equal(graph.delivered.length, before.delivered + 1);
    assert.equal(h.oauth.counts.client_credentials, before.grants + 1, 'one fresh token');
    assert.ok(graph.requests.some((r) => r.status === 401));
  });

  it('at most 4 Graph requests per mailbox at once; the rest wait and are all delivered', async () => {
    graph.delayMs = 300;
    graph.maxInFlight = 0;
    const before = graph.delivered.length;
    try {
      const replies = await Promise.all(Array.from({ length: 7 }, () => submit(['alice@example.org', 'bob@example.org'], mail())));
      for (const r of replies) assert.match(r, /^250 /);
    } finally {
      graph.delayMs = 0;
    }
    assert.equal(graph.delivered.length, before + 7);
    assert.equal(graph.maxInFlight, 4);
  });

  it('per mailbox domain: transport smtp globally, graph for one domain', async () => {
    const other = await startSmtpHarness({ upstream: { transport: 'smtp', transport_by_domain: { 'EXAMPLE.com': 'graph' }, graph: { base_url: graph.baseUrl } } });
    try {
      graph.oauth = other.oauth;
      const before = { graph: graph.delivered.length, smtp: other.upstream.deliveries.length };
      const info = await nodemailer
        .createTransport({ host: '127.0.0.1', port: other.ports.submissions, secure: true, auth: { user: other.user, pass: other.password }, tls: { rejectUnauthorized: false } })
        .sendMail({ envelope: { from: other.user, to: ['alice@example.org'] }, raw: 'From: scanner@example.com\r\nTo: alice@example.org\r\nSubject: d\r\n\r\nx\r\n' });
      assert.match(info.response, /Microsoft Graph/);
      assert.equal(graph.delivered.length, before.graph + 1);
      assert.equal(other.upstream.deliveries.length, before.smtp);
    } finally {
      graph.oauth = h.oauth;
      await other.close();
    }
  });

  it('Python smtplib and swaks send through Graph too', async () => {
    const before = graph.delivered.length;
    const env = { ...process.env };
    delete env.NODE_TEST_CONTEXT;
    const py = await run(
      'python3',
      [
        '-c',
        'import smtplib,ssl,sys\nc=ssl.create_default_context();c.check_hostname=False;c.verify_mode=ssl.CERT_NONE\ns=smtplib.SMTP_SSL("127.0.0.1",int(sys.argv[1]),context=c)\ns.login(sys.argv[2],sys.argv[3])\nm="From: scanner@example.com\\r\\nTo: alice@example.org\\r\\nBcc: carol@example.net\\r\\nSubject: py\\r\\n\\r\\nfrom python\\r\\n"\nprint(s.sendmail("scanner@example.com",["alice@example.org","carol@example.net"],m))\ns.quit()',
        String(h.ports.submissions),
        h.user,
        h.password,
      ],
      env,
    );
    assert.equal(py.status, 0, py.stderr);
    assert.equal(graph.delivered.length, before + 1);
    assert.deepEqual(graph.delivered.at(-1)!.bcc, ['carol@example.net']);
    const swaks = await run(
      'swaks',
      ['--server', '127.0.0.1', '--port', String(h.ports.submissions), '--tls-on-connect', '--auth', 'PLAIN', '--auth-user', h.user, '--auth-password', h.password, '--from', h.user, '--to', 'alice@example.org', '--header', 'From: scanner@example.com', '--body', 'from swaks'],
      env,
    );
    assert.equal(swaks.status, 0, swaks.stdout + swaks.stderr);
    assert.match(swaks.stdout, /<~ {1,2}250 2\.0\.0 OK, accepted by Microsoft Graph/);
    assert.equal(graph.delivered.length, before + 2);
    assert.ok(graph.delivered.at(-1)!.mime!.toString().includes('from swaks'));
  });

  it('doctor proves Mail.Send for --mailbox with a sendMail that has no recipient (nothing sent), and explains a refusal', async () => {
    const before = graph.delivered.length;
    const config = h.app.config.smtp.upstream.graph;
    const ok = await checkGraphSend(config, h.app.oauth!.tokens, 'scanner@example.com', 'client-id');
    assert.equal(ok.status, 'pass', ok.detail);
    assert.match(ok.detail, /Graph accepted passgate's token and Mail\.Send as scanner@example\.com \(a probe without recipients: nothing sent\) \(request-id /);
    graph.refuse('scanner@example.com', { status: 403, code: 'ErrorAccessDenied', message: 'Access to OData is disabled: [RAOP] : Blocked by tenant configured AppOnly AccessPolicy settings.' });
    try {
      const refused = await checkGraphSend(config, h.app.oauth!.tokens, 'scanner@example.com', 'client-id');
      assert.equal(refused.status, 'fail');
      assert.equal(refused.failure, 'graph-access-policy');
      assert.match(refused.hint ?? '', /Test-ApplicationAccessPolicy -Identity scanner@example\.com -AppId client-id/);
    } finally {
      graph.refuse('scanner@example.com', null);
    }
    assert.equal(graph.delivered.length, before, 'the probe never sends');
    // passgate doctor --mailbox on this configuration: the Graph probe replaces the SMTP login for a Graph mailbox.
    const report = await runDoctor({ load: { path: h.tc.file, env: {}, cwd: h.tc.dir }, mailbox: 'scanner@example.com' });
    const names = report.checks.map((c) => c.name);
    assert.ok(names.includes('graph send') && !names.includes('smtp login'), names.join(', '));
    assert.equal(report.checks.find((c) => c.name === 'graph send')!.status, 'pass');
  });
});
