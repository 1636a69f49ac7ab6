import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { once } from 'node:events';
import { connect } from 'node:net';
import { connect as tlsConnect } from 'node:tls';
import { chmodSync, mkdtempSync, readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { promisify } from 'node:util';
import { CLI_ACTOR } from '../../src/core/actor.js';
import { createLogger } from '../../src/observability/logger.js';
import { startPop3Harness, type Pop3Harness } from '../helpers/pop3-harness.js';
import { Pop3Transcript } from '../helpers/pop3-transcript.js';

const run = promisify(execFile);

type Line = Record<string, unknown>;

describe('POP3 through passgate with the clients people use: curl, fetchmail; the session line and the pipe', () => {
  const logs: string[] = [];
  let h: Pop3Harness;
  let dir: string;
  const messages = [
    Buffer.from('From: a@example.org\r\nSubject: for curl and fetchmail\r\n\r\nfirst\r\n.dot line\r\n'),
    Buffer.from(`Subject: second\r\n\r\n${`${'0123456789'.repeat(7)}\r\n`.repeat(1000)}`),
  ];
  before(async () => {
    h = await startPop3Harness({ logger: createLogger('info', { write: (line: string) => void logs.push(line) }) });
    for (const m of messages) await h.dovecot.deliver(h.user, m);
    dir = mkdtempSync(join(tmpdir(), 'passgate-pop3-clients-'));
  });
  after(async () => {
    await h.close();
    rmSync(dir, { recursive: true, force: true });
  });

  it('curl pop3s:// lists the mailbox and retrieves a message byte for byte (SASL PLAIN with a continuation)', async () => {
    const auth = ['-s', '-k', '--user', `${h.user}:${h.password}`];
    const list = await run('curl', [...auth, `pop3s://127.0.0.1:${h.ports.pop3s}/`], { timeout: 30_000 });
    assert.deepEqual(
      list.stdout.trim().split(/\r?\n/),
      messages.map((m, i) => `${i + 1} ${m.length}`),
    );
    const retr = await run('curl', [...auth, `pop3s://127.0.0.1:${h.ports.pop3s}/2`], { timeout: 30_000, encoding: 'buffer' });
    assert.ok(retr.stdout.equals(messages[1]!), 'RETR 2 through passgate is the delivered message');
  });

  it('curl pop3:// with --ssl-reqd uses STLS on the 110-style listener', async () => {
    const out = await run('curl', ['-s', '-k', '--ssl-reqd', '--user', `${h.user}:${h.password}`, `pop3://127.0.0.1:${h.ports.pop3}/1`], { timeout: 30_000, encoding: 'buffer' });
    assert.ok(out.stdout.equals(messages[0]!));
  });

  it('fetchmail fetches every message over implicit TLS and over STLS, keeping them on the server', async () => {
    for (const [port, tls] of [
      [h.ports.pop3s!, 'ssl'],
      [h.ports.pop3!, 'sslproto "tls1.2+"'],
    ] as const) {
      const out = mkdtempSync(join(dir, 'fetched-'));
      const rc = join(out, 'fetchmailrc');
      writeFileSync(
        rc,
        [
          `set no syslog`,
          `poll 127.0.0.1 service ${port} protocol pop3 auth password`,
          `  user "${h.user}" password "${h.password}" is root here`,
          `  ${tls} no sslcertck keep fetchall`,
          `  mda "/bin/sh -c 'cat > ${out}/msg.$$$$'"`,
          '',
        ].join('\n'),
      );
      chmodSync(rc, 0o600);
      const result = await run('fetchmail', ['-f', rc, '--pidfile', join(out, 'pid'), '-i', join(out, 'ids')], {
        timeout: 60_000,
        env: { ...process.env, HOME: out, FETCHMAILHOME: out },
      }).catch((error: { stdout: string; stderr: string; code: number }) => error);
      assert.equal((result as { code?: number }).code ?? 0, 0, `${result.stdout}\n${result.stderr}`);
      const fetched = readdirSync(out)
        .filter((f) => f.startsWith('msg.'))
        .map((f) => readFileSync(join(out, f)));
      assert.equal(fetched.length, messages.length, `fetchmail said: ${result.stderr}`);
      // fetchmail adds its Received: header in front and may turn CRLF into LF; the bodies arrive whole.
      for (const m of messages) {
        const body = m.toString('latin1').split('\r\n\r\n')[1]!.replace(/\r\n/g, '\n');
        assert.ok(
          fetched.some((f) => f.toString('latin1').replace(/\r\n/g, '\n').endsWith(body)),
          `a message body came through: ${JSON.stringify(fetched.map((f) => f.toString('latin1').slice(-120)))}`,
        );
      }
    }
  });

  it('commands pipelined behind PASS go upstream as sent (RFC 2449 PIPELINING)', async () => {
    const t = await Pop3Transcript.connect(h.ports.pop3s!, { tls: true });
    await t.until(/^\+OK/);
    t.write(`USER ${h.user}\r\nPASS ${h.password}\r\nSTAT\r\nUIDL\r\nQUIT\r\n`);
    await t.until(/^\+OK Send PASS/);
    await t.until(/^\+OK Logged in/);
    assert.match(await t.reply(), new RegExp(`^\\+OK ${messages.length} `));
    await t.until(/^\.$/);
    await t.until(/^\+OK/);
    await t.waitClosed();
  });

  it('turning the password off cuts a live session; one "session closed" line per session carries protocol pop3 and no secret', async () => {
    const { password, view } = await h.app.admin.appPasswords.create(CLI_ACTOR, { username: h.user, name: 'Ticketing' });
    const t = await Pop3Transcript.connect(h.ports.pop3s!, { tls: true });
    await t.until(/^\+OK/);
    t.send(`USER ${h.user}`);
    await t.reply();
    t.send(`PASS ${password}`);
    await t.until(/^\+OK Logged in/);
    await h.app.admin.appPasswords.turnOff(CLI_ACTOR, view.id);
    await t.waitClosed();
    const deadline = Date.now() + 10_000;
    let line: Line | undefined;
    while (!line && Date.now() < deadline) {
      line = logs.map((l) => JSON.parse(l) as Line).find((l) => l.msg === 'session closed' && l.appPasswordId === view.id);
      if (!line) await new Promise((r) => setTimeout(r, 50));
    }
    assert.ok(line, 'the session closed line was written');
    assert.equal(line.protocol, 'pop3');
    assert.equal(line.listener, 'pop3s');
    assert.match(String(line.reason), /revoked|expired/);
    const all = logs.join('\n');
    for (const secret of [password, h.password]) assert.ok(!all.includes(secret), 'a password was logged');
  });
});

describe('POP3 before login: the PROXY header, the connection caps, the login deadline and shutdown (shared net/ code)', () => {
  let h: Pop3Harness;
  before(async () => {
    h = await startPop3Harness({ pop3: { max_connections_per_ip: 2, login_timeout_seconds: 1 } });
  });
  after(async () => h?.close());

  it('takes the audited client address from a PROXY v1 header sent by a listed balancer', async () => {
    const socket = connect(h.ports['behind-proxy']!, '127.0.0.1');
    await once(socket, 'connect');
    socket.write('PROXY TCP4 198.51.100.44 127.0.0.1 40000 995\r\n');
    const secure = tlsConnect({ socket, rejectUnauthorized: false });
    await once(secure, 'secureConnect');
    let text = '';
    secure.on('data', (c: Buffer) => (text += c.toString()));
    secure.write(`USER ${h.user}\r\nPASS not-the-password\r\n`);
    while (!/-ERR \[AUTH\]/.test(text)) await once(secure, 'data');
    secure.destroy();
    const [entry] = await h.app.audit.query({ username: h.user, limit: 1 });
    assert.deepEqual([entry!.clientIp, entry!.protocol], ['198.51.100.44', 'pop3']);
  });

  it('a third connection from one address is greeted -ERR [SYS/TEMP] and closed; the deadline ends a silent one', async () => {
    const first = await Pop3Transcript.connect(h.ports.pop3s!, { tls: true });
    const second = await Pop3Transcript.connect(h.ports.pop3s!, { tls: true });
    await first.until(/^\+OK/);
    await second.until(/^\+OK/);
    const third = await Pop3Transcript.connect(h.ports.pop3s!, { tls: true });
    assert.match(await third.until(/^-ERR/), /^-ERR \[SYS\/TEMP\] Too many connections from your address/);
    await third.waitClosed();
    // login_timeout_seconds: 1 — the silent ones are told and closed.
    assert.match(await first.until(/^-ERR/), /Autologout/);
    await first.waitClosed();
    await second.waitClosed();
  });

  it('shutdown tells a client before login -ERR [SYS/TEMP] and closes it', async () => {
    const t = await Pop3Transcript.connect(h.ports.pop3!);
    await t.until(/^\+OK/);
    const closing = h.services.pop3!.close();
    assert.match(await t.until(/^-ERR/), /^-ERR \[SYS\/TEMP\] Server shutting down/);
    await t.waitClosed();
    await closing;
  });
});

describe('POP3 upstream failures reach the client as RFC 3206 response codes', () => {
  it('-ERR [SYS/TEMP] when the upstream cannot be reached, audited unavailable', async () => {
    const broken = await startPop3Harness({ pop3: { upstream: { host: '127.0.0.1', port: 1, tls: 'implicit', connect_timeout_seconds: 2 } } });
    try {
      const t = await Pop3Transcript.connect(broken.ports.pop3s!, { tls: true });
      await t.until(/^\+OK/);
      t.send(`USER ${broken.user}`);
      await t.reply();
      t.send(`PASS ${broken.password}`);
      assert.match(await t.reply(), /^-ERR \[SYS\/TEMP\]/);
      t.close();
      const [entry] = await broken.app.audit.query({ username: broken.user, limit: 1 });
      assert.deepEqual([entry!.protocol, entry!.reason], ['pop3', 'unavailable']);
    } finally {
      await broken.close();
    }
  });
});
