import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import { createLogger } from '../../src/observability/logger.js';
import { startImapHarness, type ImapHarness } from '../helpers/imap-harness.js';
import { ImapTranscript } from '../helpers/imap-transcript.js';
import { startSmtpHarness, type SmtpHarness } from '../helpers/smtp-harness.js';
import { plain, SmtpTranscript } from '../helpers/smtp-transcript.js';

/** The value of one series in a Prometheus text scrape (labels in the order prom-client writes them), or null. */
function sample(text: string, name: string, labels: Record<string, string> = {}): number | null {
  const wanted = Object.entries(labels).map(([k, v]) => `${k}="${v}"`);
  for (const line of text.split('\n')) {
    const match = /^([a-z0-9_]+)(?:\{(.*)\})? (\S+)$/.exec(line);
    if (!match || match[1] !== name) continue;
    const have = match[2] ? match[2].split(',') : [];
    if (wanted.every((w) => have.includes(w)) && have.length === wanted.length) return Number(match[3]);
  }
  return null;
}

const scrape = async (port: number) => (await fetch(`http://127.0.0.1:${port}/metrics`)).text();

type Line = Record<string, unknown>;

/** Waits (bounded) until `count` `session closed` lines of `protocol` were logged, and returns them. */
async function closedLines(logs: string[], protocol: string, count: number): Promise<Line[]> {
  const deadline = Date.now() + 20_000;
  for (;;) {
    const lines = logs.map((l) => JSON.parse(l) as Line).filter((l) => l.msg === 'session closed' && l.protocol === protocol);
    if (lines.length >= count || Date.now() > deadline) return lines;
    await new Promise((r) => setTimeout(r, 50));
  }
}

const COMMON_FIELDS = ['session', 'protocol', 'listener', 'ip', 'bytesIn', 'bytesOut', 'durationMs', 'reason'];
const LOGIN_FIELDS = ['user', 'mailbox', 'appPasswordId', 'appPasswordName'];
const PINO_FIELDS = ['level', 'time', 'pid', 'name', 'msg'];

describe('session metrics and the one "session closed" line, over real SMTP and IMAP sessions', () => {
  const smtpLogs: string[] = [];
  const imapLogs: string[] = [];
  let smtp: SmtpHarness;
  let imap: ImapHarness;

  before(async () => {
    smtp = await startSmtpHarness({ logger: createLogger('info', { write: (line: string) => void smtpLogs.push(line) }) });
    imap = await startImapHarness({ logger: createLogger('info', { write: (line: string) => void imapLogs.push(line) }) });
  });
  after(async () => {
    await smtp?.close();
    await imap?.close();
  });

  it('SMTP: the session gauge follows the login, upstream latency and the session end are counted, one line each', async () => {
    const ops = smtp.services.ops!.port;
    const t = await SmtpTranscript.connect(smtp.ports.submissions!, { tls: true });
    await t.expect(/^220 /);
    t.send('EHLO client.test');
    await t.expect(/^250 /m);
    let m = await scrape(ops);
    assert.equal(sample(m, 'passgate_sessions', { protocol: 'smtp', state: 'unauthenticated' }), 1);
    assert.equal(sample(m, 'passgate_sessions', { protocol: 'smtp', state: 'authenticated' }), 0);
    t.send(`AUTH PLAIN ${plain(smtp.user, smtp.password)}`);
    await t.expect(/^235 /);
    m = await scrape(ops);
    assert.equal(sample(m, 'passgate_sessions', { protocol: 'smtp', state: 'unauthenticated' }), 0);
    assert.equal(sample(m, 'passgate_sessions', { protocol: 'smtp', state: 'authenticated' }), 1);
    t.send(`MAIL FROM:<${smtp.user}>`);
    await t.expect(/^250 /);
    t.send('RCPT TO:<boss@example.org>');
    await t.expect(/^250 /);
    t.send('RCPT TO:<deputy@example.org>');
    await t.expect(/^250 /);
    t.send('DATA');
    await t.expect(/^354 /);
    t.write('Subject: observed\r\n\r\nhello\r\n.\r\n');
    await t.expect(/^250 /);
    t.send('QUIT');
    await t.expect(/^221 /);
    await t.waitClosed();

    // A guesser: three wrong passwords, and the connection is closed by passgate.
    const g = await SmtpTranscript.connect(smtp.ports.submissions!, { tls: true });
    await g.expect(/^220 /);
    g.send('EHLO guesser.test');
    await g.expect(/^250 /m);
    for (const reply of [/^535 /, /^535 /, /^421 /]) {
      g.send(`AUTH PLAIN ${plain(smtp.user, 'abcd-efgh-ijkl-mnop')}`);
      await g.expect(reply);
    }
    await g.waitClosed();

    const lines = await closedLines(smtpLogs, 'smtp', 2);
    assert.equal(lines.length, 2, JSON.stringify(lines));
    assert.notEqual(lines[0]!.session, lines[1]!.session);
    const good = lines.find((l) => l.user !== undefined)!;
    const bad = lines.find((l) => l.user === undefined)!;
    assert.deepEqual(Object.keys(good).sort(), [...PINO_FIELDS, ...COMMON_FIELDS, ...LOGIN_FIELDS, 'messages', 'recipients', 'transport'].sort());
    assert.equal(good.transport, 'smtp', 'issue 20: the transport that carried the messages');
    assert.deepEqual(Object.keys(bad).sort(), [...PINO_FIELDS, ...COMMON_FIELDS, 'messages', 'recipients'].sort());
    const id = (await smtp.app.store.list({ username: smtp.user }))[0]!.id;
    assert.deepEqual(
      [good.listener, good.ip, good.user, good.mailbox, good.appPasswordId, good.appPasswordName, good.messages, good.recipients, good.reason],
      ['submissions', '127.0.0.1', smtp.user, smtp.user, id, 'Scanner, 3rd floor', 1, 2, 'client-closed'],
    );
    assert.deepEqual([bad.listener, bad.messages, bad.recipients, bad.reason], ['submissions', 0, 0, 'too-many-failures']);
    for (const line of lines) {
      // Wire bytes: the TLS handshake alone is more than a kilobyte each way.
      assert.ok((line.bytesIn as number) > 500 && (line.bytesOut as number) > 500, JSON.stringify(line));
      assert.ok(typeof line.durationMs === 'number' && line.durationMs >= 0, JSON.stringify(line));
    }

    m = await scrape(ops);
    assert.equal(sample(m, 'passgate_sessions', { protocol: 'smtp', state: 'unauthenticated' }), 0);
    assert.equal(sample(m, 'passgate_sessions', { protocol: 'smtp', state: 'authenticated' }), 0);
    assert.equal(sample(m, 'passgate_sessions_closed_total', { protocol: 'smtp', reason: 'client-closed' }), 1);
    assert.equal(sample(m, 'passgate_sessions_closed_total', { protocol: 'smtp', reason: 'too-many-failures' }), 1);
    assert.equal(sample(m, 'passgate_session_duration_seconds_count', { protocol: 'smtp' }), 2);
    // The login proved the mailbox upstream once (connect + XOAUTH2); the session went back to the pool and served MAIL.
    assert.equal(sample(m, 'passgate_upstream_connect_duration_seconds_count', { protocol: 'smtp', result: 'success' }), 1);
    assert.equal(sample(m, 'passgate_upstream_auth_duration_seconds_count', { protocol: 'smtp', result: 'success' }), 1);
    const command = (name: string, result: string) => sample(m, 'passgate_upstream_command_duration_seconds_count', { protocol: 'smtp', command: name, result });
    assert.deepEqual([command('MAIL', '2xx'), command('RCPT', '2xx'), command('DATA', '3xx'), command('EOM', '2xx')], [1, 2, 1, 1]);
    // One for the login, one (against the dummy hash) for each guess.
    assert.equal(sample(m, 'passgate_argon2_duration_seconds_count', { operation: 'verify' }), 4);
    assert.equal(sample(m, 'passgate_smtp_upstream_pool_sessions', { state: 'busy' }), 0);
    assert.equal(sample(m, 'passgate_smtp_upstream_pool_sessions', { state: 'idle' }), 1);
    assert.equal(sample(m, 'passgate_smtp_upstream_pool_waiting'), 0);
    assert.equal(sample(m, 'passgate_ready'), 1);
    assert.equal(sample(m, 'passgate_oauth_tokens', { state: 'ok' }), 1);
    // Still one line per session once the 1 s backstop for sockets smtp-server never reported has passed.
    await new Promise((r) => setTimeout(r, 1500));
    assert.equal((await closedLines(smtpLogs, 'smtp', 0)).length, 2);
  });

  it('IMAP: the session gauge follows the login, upstream connect and XOAUTH2 are timed, one line per session', async () => {
    const ops = imap.services.ops!.port;
    const t = await ImapTranscript.connect(imap.ports.imaps!, { tls: true });
    await t.until(/^\* OK/);
    let m = await scrape(ops);
    assert.equal(sample(m, 'passgate_sessions', { protocol: 'imap', state: 'unauthenticated' }), 1);
    t.send(`a LOGIN ${imap.user} ${imap.password}`);
    await t.until(/^a OK/);
    m = await scrape(ops);
    assert.equal(sample(m, 'passgate_sessions', { protocol: 'imap', state: 'unauthenticated' }), 0);
    assert.equal(sample(m, 'passgate_sessions', { protocol: 'imap', state: 'authenticated' }), 1);
    t.send('b SELECT INBOX');
    await t.until(/^b OK/);
    t.send('c LOGOUT');
    await t.until(/^c OK/);
    await t.waitClosed();

    const f = await ImapTranscript.connect(imap.ports.imaps!, { tls: true });
    await f.until(/^\* OK/);
    f.send(`a LOGIN ${imap.user} abcd-efgh-ijkl-mnop`);
    await f.until(/^a NO/);
    f.send('b LOGOUT');
    await f.until(/^b OK/);
    await f.waitClosed();

    const lines = await closedLines(imapLogs, 'imap', 2);
    assert.equal(lines.length, 2, JSON.stringify(lines));
    const good = lines.find((l) => l.user !== undefined)!;
    const bad = lines.find((l) => l.user === undefined)!;
    assert.deepEqual(Object.keys(good).sort(), [...PINO_FIELDS, ...COMMON_FIELDS, ...LOGIN_FIELDS].sort());
    assert.deepEqual(Object.keys(bad).sort(), [...PINO_FIELDS, ...COMMON_FIELDS].sort());
    assert.deepEqual([good.listener, good.ip, good.user, good.mailbox, good.appPasswordName], ['imaps', '127.0.0.1', imap.user, imap.user, 'Thunderbird']);
    // After LOGOUT the upstream says BYE and closes, or the client closes first: either ends the pipe.
    assert.ok(['upstream-closed', 'client-closed'].includes(good.reason as string), String(good.reason));
    assert.equal(bad.reason, 'logout');
    for (const line of lines) assert.ok((line.bytesIn as number) > 500 && (line.bytesOut as number) > 500, JSON.stringify(line));

    m = await scrape(ops);
    assert.equal(sample(m, 'passgate_sessions', { protocol: 'imap', state: 'unauthenticated' }), 0);
    assert.equal(sample(m, 'passgate_sessions', { protocol: 'imap', state: 'authenticated' }), 0);
    assert.equal(sample(m, 'passgate_sessions_closed_total', { protocol: 'imap', reason: 'logout' }), 1);
    assert.equal(sample(m, 'passgate_session_duration_seconds_count', { protocol: 'imap' }), 2);
    assert.equal(sample(m, 'passgate_upstream_connect_duration_seconds_count', { protocol: 'imap', result: 'success' }), 1);
    assert.equal(sample(m, 'passgate_upstream_auth_duration_seconds_count', { protocol: 'imap', result: 'success' }), 1);
    assert.ok(sample(m, 'passgate_imap_proxied_bytes_total', { direction: 'upstream-to-client' })! > 0, 'proxied bytes counted');
    assert.equal((await closedLines(imapLogs, 'imap', 0)).length, 2);
  });

  it('never logs a password, a token or a secret', async () => {
    // Sessions of its own to scan (each test stands alone): a right and a wrong password on each protocol.
    const good = await SmtpTranscript.loggedIn(smtp.ports.submissions!, smtp.user, smtp.password);
    good.send('QUIT');
    await good.waitClosed();
    const bad = await SmtpTranscript.connect(smtp.ports.submissions!, { tls: true });
    await bad.expect(/^220 /);
    bad.send('EHLO client.test');
    await bad.expect(/^250 /m);
    bad.send(`AUTH PLAIN ${plain(smtp.user, 'abcd-efgh-ijkl-mnop')}`);
    await bad.expect(/^535 /m);
    bad.close();
    for (const password of [imap.password, 'abcd-efgh-ijkl-mnop']) {
      const t = await ImapTranscript.connect(imap.ports.imaps!, { tls: true });
      await t.until(/^\* OK/);
      t.send(`a LOGIN ${imap.user} ${password}`);
      await t.until(/^a (OK|NO)/);
      t.send('b LOGOUT');
      await t.waitClosed();
    }
    const text = smtpLogs.join('') + imapLogs.join('');
    const secrets = [smtp.password, imap.password, 'abcd-efgh-ijkl-mnop', ...smtp.oauth.issuedAccessTokens(), ...imap.oauth.issuedAccessTokens()];
    assert.ok(smtp.oauth.issuedAccessTokens().length > 0 && imap.oauth.issuedAccessTokens().length > 0, 'tokens were issued');
    const forms = secrets.flatMap((s) => [s, s.replace(/-/g, ''), Buffer.from(s).toString('base64'), plain(smtp.user, s), plain(imap.user, s)]);
    for (const form of forms) assert.ok(!text.includes(form), `a secret reached the logs: ${form.slice(0, 6)}…`);
  });
});
