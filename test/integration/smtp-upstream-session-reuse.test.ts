import assert from 'node:assert/strict';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { afterEach, describe, it } from 'node:test';
import { generateSelfSignedCertificate } from '../../src/tls/self-signed-certificate.js';
import { ScriptedSmtpUpstream, type ScriptedUpstreamOptions } from '../helpers/scripted-smtp-upstream.js';
import { startSmtpHarness, type SmtpHarness } from '../helpers/smtp-harness.js';
import { SmtpTranscript } from '../helpers/smtp-transcript.js';

/**
 * When passgate stops trusting an upstream session and opens a fresh one: after a 421, after a RSET the upstream did
 * not confirm, and once the token it logged in with has expired. And what the upstream sees of an IDN address.
 * The upstream is scripted (ScriptedSmtpUpstream), so it can misbehave in ways a real server rarely does on cue.
 */
describe('SMTP upstream sessions: when one is replaced, and what the upstream is sent', () => {
  let upstream: ScriptedSmtpUpstream | undefined;
  let h: SmtpHarness | undefined;
  let certDir: string | undefined;

  async function start(script: Omit<ScriptedUpstreamOptions, 'tls'> = {}): Promise<{ h: SmtpHarness; upstream: ScriptedSmtpUpstream }> {
    const pair = await generateSelfSignedCertificate({ commonName: 'scripted.test', dnsNames: ['scripted.test'], ipAddresses: ['127.0.0.1'] });
    upstream = await new ScriptedSmtpUpstream({ tls: pair, ...script }).start();
    certDir = mkdtempSync(join(tmpdir(), 'passgate-scripted-ca-'));
    writeFileSync(join(certDir, 'ca.pem'), pair.cert);
    h = await startSmtpHarness({
      upstream: { port: upstream.port, tls: 'implicit', ca_file: join(certDir, 'ca.pem'), servername: 'scripted.test' },
    });
    return { h, upstream };
  }

  afterEach(async () => {
    await h?.close();
    await upstream?.stop();
    if (certDir) rmSync(certDir, { recursive: true, force: true });
    h = upstream = certDir = undefined;
  });

  const login = (harness: SmtpHarness) => SmtpTranscript.loggedIn(harness.ports.submissions!, harness.user, harness.password);

  /** One whole transaction on an open transcript; the final reply must be the upstream's 250. */
  async function transaction(t: SmtpTranscript, user: string, rcpt = 'someone@example.net'): Promise<void> {
    t.send(`MAIL FROM:<${user}>`);
    await t.expect(/^250 /);
    t.send(`RCPT TO:<${rcpt}>`);
    await t.expect(/^250 /);
    t.send('DATA');
    await t.expect(/^354 /);
    t.send('Subject: reuse\r\n\r\nhello\r\n.');
    await t.expect(/^250 2\.0\.0 queued as SCRIPTED/);
  }

  async function oneMessage(harness: SmtpHarness): Promise<void> {
    const t = await login(harness);
    try {
      await transaction(t, harness.user);
      t.send('QUIT');
      await t.expect(/^221 /);
    } finally {
      t.close();
    }
  }

  it('after a 421 the session is never used again, even in the moment before the upstream closes it', async () => {
    // The upstream refuses the sender, then says 421 to the RCPT pipelined behind it, and leaves the socket open.
    const { h, upstream } = await start({
      reply: (verb, _line, connection) => (connection !== 1 ? undefined : verb === 'MAIL' ? '550 5.7.1 sender refused' : verb === 'RCPT' ? '421 4.3.2 closing' : undefined),
    });
    const t = await login(h);
    try {
      t.send(`MAIL FROM:<${h.user}>`);
      await t.expect(/^250 /);
      t.send('RCPT TO:<someone@example.net>');
      await t.expect(/^550 5\.7\.1 sender refused/);
      t.send('RSET'); // the same client starts over
      await t.expect(/^250 /);
      await transaction(t, h.user);
    } finally {
      t.close();
    }
    assert.equal(upstream.connections, 2, 'a fresh upstream session for the second try');
    assert.deepEqual(
      upstream.lines.filter((l) => l.connection === 1).map((l) => l.line.split(/[ :]/)[0]),
      ['EHLO', 'AUTH', 'MAIL', 'RCPT'],
      'nothing was sent on the session after its 421',
    );
  });

  it('a RSET the upstream does not confirm: the next transaction goes out on a fresh session', async () => {
    const { h, upstream } = await start({ reply: (verb) => (verb === 'RSET' ? '502 5.5.1 RSET not implemented' : undefined) });
    const t = await login(h);
    try {
      t.send(`MAIL FROM:<${h.user}>`);
      await t.expect(/^250 /);
      t.send('RCPT TO:<first@example.net>');
      await t.expect(/^250 /);
      t.send('RSET'); // the client changes its mind: smtp-server answers it; passgate resets upstream at the next MAIL
      await t.expect(/^250 /);
      await transaction(t, h.user, 'second@example.net');
    } finally {
      t.close();
    }
    assert.equal(upstream.connections, 2);
    const second = upstream.lines.filter((l) => l.connection === 2).map((l) => l.line);
    assert.ok(second.includes('RCPT TO:<second@example.net>') && second.includes('DATA'), second.join(' | '));
    assert.ok(!second.some((l) => l.includes('first@example.net')));
  });

  it('an idle session whose token has expired is not reused', async () => {
    const { h, upstream } = await start();
    h.oauth.tokenLifetime = 5; // the first upstream login uses a token good for 5 s (room for two messages under load)
    await oneMessage(h);
    const expiredBy = Date.now() + 5000; // the token was issued before the first message was through
    await oneMessage(h);
    assert.equal(upstream.connections, 1, 'reused while its token is good');
    await sleep(Math.max(0, expiredBy + 100 - Date.now())); // the token's own life: time is the event here
    await oneMessage(h);
    assert.equal(upstream.connections, 2, 'a fresh session (and token) once it expired');
    // The expired session is sent QUIT in the background.
    const deadline = Date.now() + 10_000;
    while (!upstream.lines.some((l) => l.connection === 1 && l.line === 'QUIT') && Date.now() < deadline) await sleep(20);
    assert.ok(upstream.lines.some((l) => l.connection === 1 && l.line === 'QUIT'), 'the expired session was closed politely');
  });

  it('relays an IDN address in ASCII form, whichever form the client used (smtp-server hands it over in Unicode)', async () => {
    const { h, upstream } = await start();
    const t = await login(h);
    try {
      await transaction(t, h.user, 'user@xn--bcher-kva.example');
      await transaction(t, h.user, 'other@Bücher.example');
    } finally {
      t.close();
    }
    const rcpts = upstream.lines.filter((l) => l.line.startsWith('RCPT')).map((l) => l.line);
    assert.deepEqual(rcpts, ['RCPT TO:<user@xn--bcher-kva.example>', 'RCPT TO:<other@xn--bcher-kva.example>']);
  });
});
