import { CLI_ACTOR } from '../../src/core/actor.js';
import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import type { MessageRecord } from '../../src/core/message-log.js';
import { createLogger } from '../../src/observability/logger.js';
import { runCli } from '../helpers/run-cli.js';
import { startSmtpHarness, type SmtpHarness } from '../helpers/smtp-harness.js';
import { SmtpTranscript } from '../helpers/smtp-transcript.js';

/**
 * "Did the scanner's 09:00 scan go?": every message through the SMTP gateway, and every refusal of one, is a
 * record in the message trace (sender, recipients, size, Message-ID, the upstream's final reply and queue id, the
 * session, the app password), queryable with `passgate audit --messages`, and the log line says the same.
 */
describe('message trace', () => {
  let h: SmtpHarness;
  const logs: string[] = [];
  let printer: { id: string; password: string };

  before(async () => {
    h = await startSmtpHarness({ logger: createLogger('info', { write: (line: string) => void logs.push(line) }) });
    const created = await h.app.admin.appPasswords.create(CLI_ACTOR, {
      username: 'printer@example.com',
      name: 'Printer, 2nd floor',
      policy: { allowedRecipientDomains: ['example.com'], maxMessagesPerHour: 1, maxMessageBytes: 1000 },
    });
    printer = { id: created.view.id, password: created.password };
  });
  after(async () => h.close());

  const logLines = (msg: string) => logs.map((l) => JSON.parse(l) as Record<string, unknown>).filter((l) => l.msg === msg);
  const cli = (...args: string[]) => runCli(['--config', h.tc.file, ...args], { cwd: h.tc.dir });

  async function send(t: SmtpTranscript, from: string, to: string[], body: string): Promise<string> {
    t.send(`MAIL FROM:<${from}>`);
    await t.expect(/^250 /);
    for (const rcpt of to) {
      t.send(`RCPT TO:<${rcpt}>`);
      await t.expect(/^250 /);
    }
    t.send('DATA');
    await t.expect(/^354 /);
    t.send(`${body}\r\n.`);
    return t.expect(/^250 /);
  }

  it('records a relayed message with its Message-ID, size, recipients, session and the upstream\'s reply and queue id', async () => {
    const t = await SmtpTranscript.loggedIn(h.ports.submissions!, h.user, h.password);
    const body = 'Message-ID:\r\n <scan-0900@scanner.example.com>\r\nSubject: scan\r\n\r\nthe scan';
    const reply = await send(t, h.user, ['boss@example.com', 'archive@example.org'], body);
    t.send('QUIT');
    await t.expect(/^221 /);
    const [record] = await h.app.messageLog.query({ username: h.user, limit: 10 });
    assert.ok(record, 'a record for the message');
    const relayed = logLines('message relayed');
    assert.equal(relayed.length, 1);
    assert.equal(record.sessionId, relayed[0]!.session, 'the record names the session of the log lines');
    assert.deepEqual(
      { ...record, at: 0, sessionId: '', clientIp: '' },
      {
        at: 0,
        sessionId: '',
        clientIp: '',
        protocol: 'smtp',
        username: h.user,
        mailbox: h.user,
        appPasswordId: record.appPasswordId,
        appPasswordName: 'Scanner, 3rd floor',
        sender: h.user,
        recipientCount: 2,
        recipients: ['boss@example.com', 'archive@example.org'],
        sizeBytes: Buffer.byteLength(`${body}\r\n`), // the CRLF before the final dot is the message's last line end
        messageId: '<scan-0900@scanner.example.com>',
        reply: reply.trim(),
        queueId: '<queued-1@upstream.test>',
        result: 'relayed',
        detail: null,
      } satisfies MessageRecord,
    );
    assert.match(record.appPasswordId, /\S/);
    assert.equal(record.clientIp, '127.0.0.1');
    // The log line carries what the record does: sender, recipients, Message-ID, queue id.
    assert.equal(relayed[0]!.sender, h.user);
    assert.deepEqual(relayed[0]!.recipients, ['boss@example.com', 'archive@example.org']);
    assert.equal(relayed[0]!.messageId, '<scan-0900@scanner.example.com>');
    assert.equal(relayed[0]!.queueId, '<queued-1@upstream.test>');

    // The admin's question, through the CLI: this user's relayed messages, since a minute ago, to the second.
    const out = await cli('audit', '--messages', '--user', h.user, '--result', 'relayed', '--since', '1m');
    assert.equal(out.code, 0, out.stderr);
    assert.match(out.stdout, /^TIME +SESSION +USER +APP PASSWORD +FROM +TO +SIZE +MESSAGE-ID +RESULT +REPLY\n/);
    assert.match(out.stdout, /\d{4}-\d\d-\d\d \d\d:\d\d:\d\dZ/, 'times to the second');
    assert.match(out.stdout, new RegExp(`${record.sessionId} .*boss@example.com \\+1 .*<scan-0900@scanner.example.com> +relayed +250 `));
    const json = JSON.parse((await cli('audit', '--messages', '--id', record.appPasswordId, '--json')).stdout) as MessageRecord[];
    assert.deepEqual(json, [record]);
    const until = new Date(record.at).toISOString();
    const before = await cli('audit', '--messages', '--until', until);
    assert.equal(before.stdout, 'no messages\n', `--until is before, not at: ${before.stderr}`);
    assert.equal((await cli('audit', '--messages', '--protocol', 'imap')).stdout, 'no messages\n');
  });

  it('records each policy refusal, naming the rule and the refused address, in the trace and the log', async () => {
    const t = await SmtpTranscript.loggedIn(h.ports.submissions!, 'printer@example.com', printer.password);
    t.send('MAIL FROM:<ceo@example.com>');
    await t.expect(/^550 5\.7\.1 Sender address not allowed/);
    t.send('MAIL FROM:<printer@example.com>');
    await t.expect(/^250 /);
    t.send('RCPT TO:<someone@elsewhere.org>');
    await t.expect(/^550 5\.7\.1 Recipient domain not allowed/);
    t.send('RSET');
    await t.expect(/^250 /);
    t.send('MAIL FROM:<printer@example.com> SIZE=5000');
    await t.expect(/^552 5\.3\.4 Message too big/);
    await send(t, 'printer@example.com', ['boss@example.com'], 'Subject: first\r\n\r\nok');
    t.send('MAIL FROM:<printer@example.com>');
    await t.expect(/^451 4\.7\.1 Message rate limit reached/);
    t.send('QUIT');
    await t.expect(/^221 /);

    const records = await h.app.messageLog.query({ appPasswordId: printer.id, result: 'policy-denied', limit: 10 });
    assert.deepEqual(
      records.map((r) => [r.detail, r.sender, r.recipients, r.reply]).reverse(),
      [
        ['sender not allowed: ceo@example.com', 'ceo@example.com', [], '550 5.7.1 Sender address not allowed for this login'],
        ['recipient domain not allowed: someone@elsewhere.org', 'printer@example.com', ['someone@elsewhere.org'], '550 5.7.1 Recipient domain not allowed for this login'],
        ['message too big: declared SIZE=5000', 'printer@example.com', [], '552 5.3.4 Message too big for this login'],
        ['message rate limit reached: printer@example.com', 'printer@example.com', [], '451 4.7.1 Message rate limit reached for this login, try again later'],
      ],
    );
    const refusals = logLines('message refused by policy').filter((l) => l.appPasswordId === printer.id);
    assert.deepEqual(
      refusals.map((l) => l.detail),
      records.map((r) => r.detail).reverse(),
      'the log line names the rule and the address too',
    );
    const out = await cli('audit', '--messages', '--user', 'printer@example.com', '--result', 'policy-denied');
    assert.match(out.stdout, /sender not allowed: ceo@example\.com/);
    assert.match(out.stdout, /recipient domain not allowed: someone@elsewhere\.org/);
  });

  it('records the upstream\'s refusal of a recipient with its reply', async () => {
    h.upstream.refuseRecipients.set('nobody@example.com', { code: 550, text: '5.1.10 RESOLVER.ADR.RecipientNotFound; Recipient not found by SMTP address lookup' });
    const t = await SmtpTranscript.loggedIn(h.ports.submissions!, h.user, h.password);
    t.send(`MAIL FROM:<${h.user}>`);
    await t.expect(/^250 /);
    t.send('RCPT TO:<nobody@example.com>');
    const reply = await t.expect(/^550 .*RESOLVER\.ADR\.RecipientNotFound/);
    t.send('QUIT');
    await t.expect(/^221 /);
    const [record] = await h.app.messageLog.query({ username: h.user, result: 'refused', limit: 1 });
    assert.equal(record?.detail, 'RCPT refused');
    assert.deepEqual(record?.recipients, ['nobody@example.com']);
    assert.equal(record?.reply, reply.trim());
  });

  it('records a message the upstream lost before it confirmed it as failed, with the 451 the client got', async () => {
    h.upstream.dropDuringDataAfter = 10;
    const t = await SmtpTranscript.loggedIn(h.ports.submissions!, h.user, h.password);
    t.send(`MAIL FROM:<${h.user}>`);
    await t.expect(/^250 /);
    t.send('RCPT TO:<boss@example.com>');
    await t.expect(/^250 /);
    t.send('DATA');
    await t.expect(/^354 /);
    t.send(`Message-ID: <lost@scanner.example.com>\r\n\r\n${'x'.repeat(2000)}\r\n.`);
    const reply = await t.expect(/^451 4\.4\.2 /);
    const [record] = await h.app.messageLog.query({ username: h.user, result: 'failed', limit: 1 });
    assert.equal(record?.messageId, '<lost@scanner.example.com>');
    assert.deepEqual(record?.recipients, ['boss@example.com']);
    assert.equal(record?.reply, reply.trim());
    assert.equal(record?.queueId, null);
    assert.equal(logLines('message not relayed').at(-1)?.messageId, '<lost@scanner.example.com>');
  });

  it('checks the CLI\'s filters and says what it expects', async () => {
    const wrong = await cli('audit', '--messages', '--result', 'ok');
    assert.equal(wrong.code, 2);
    assert.match(wrong.stderr, /invalid --result "ok": one of relayed, refused, failed, policy-denied/);
    // A sign-in of its own to find (each test stands alone).
    const t = await SmtpTranscript.loggedIn(h.ports.submissions!, 'printer@example.com', printer.password);
    t.send('QUIT');
    await t.waitClosed();
    const signIns = await cli('audit', '--result', 'ok', '--protocol', 'smtp', '--user', 'printer@example.com', '--json');
    assert.equal(signIns.code, 0, signIns.stderr);
    const events = JSON.parse(signIns.stdout) as { action: string; reason: string; protocol: string }[];
    assert.ok(events.length >= 1);
    assert.ok(events.every((e) => e.action === 'login' && e.reason === 'ok' && e.protocol === 'smtp'));
    assert.equal((await cli('audit', '--until', '2020-01-01 00:00')).stdout, 'no entries\n');
  });
});
