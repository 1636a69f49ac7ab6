import assert from 'node:assert/strict';
import { once } from 'node:events';
import { connect } from 'node:net';
import { after, before, describe, it } from 'node:test';
import { connect as tlsConnect } from 'node:tls';
import { startSmtpHarness, type SmtpHarness } from '../helpers/smtp-harness.js';
import { plain, SmtpTranscript } from '../helpers/smtp-transcript.js';
import { HarnessProcess } from '../helpers/harness-process.js';
import { heldAtLeast, proxyV1, refusedCounts, trickleUntilClosed, viaBalancer } from '../helpers/slow-client.js';

const LOGIN_TIMEOUT_S = 5;


describe('SMTP floods and slow clients (real sockets, real TLS, PROXY headers from a listed balancer)', () => {
  let h: SmtpHarness;
  before(async () => {
    h = await startSmtpHarness({
      smtp: { max_connections: 6, max_connections_per_ip: 2, login_timeout_seconds: 30 },
      rateLimit: { trusted_networks: ['198.51.100.0/24'] },
    });
  });
  after(async () => h.close());

  it('a flood from one address gets 421 4.7.0 on every listener while another client gets in and logs in; the total cap; slots come back on close', async () => {
    // Two logged-in connections from 127.0.0.1 fill its share.
    const holders: SmtpTranscript[] = [];
    for (let i = 0; i < 2; i++) {
      const t = await SmtpTranscript.connect(h.ports['lan-local']!);
      await t.expect(/^220 /);
      t.send('EHLO holder.test');
      await t.expect(/^250 /m);
      t.send(`AUTH PLAIN ${plain(h.user, h.password)}`);
      await t.expect(/^235 /);
      holders.push(t);
    }
    // The caps are per protocol, not per port: the same address is refused on 587-style and 465-style listeners.
    for (const [port, tls] of [
      [h.ports.submission!, false],
      [h.ports.submissions!, true],
    ] as const) {
      const t = await SmtpTranscript.connect(port, { tls });
      await t.expect(/^421 4\.7\.0 Too many connections from your address, try again later\r\n$/);
      await t.waitClosed();
    }
    // Another client, behind the balancer (the cap counts the address in the PROXY header, not the balancer's).
    const other = SmtpTranscript.wrap(await viaBalancer(h.ports['behind-proxy']!, '203.0.113.10'));
    await other.expect(/^220 /);
    other.send('EHLO other.test');
    await other.expect(/^250 /m);
    await other.starttls();
    other.send('EHLO other.test');
    await other.expect(/^250 /m);
    other.send(`AUTH PLAIN ${plain(h.user, h.password)}`);
    await other.expect(/^235 /);
    // Trusted networks have no per-address cap: three from one trusted address, beyond max_connections_per_ip (2).
    const trusted: SmtpTranscript[] = [];
    for (let i = 0; i < 3; i++) {
      const t = SmtpTranscript.wrap(await viaBalancer(h.ports['behind-proxy']!, '198.51.100.7'));
      await t.expect(/^220 /);
      trusted.push(t);
    }
    // Six open: the total cap refuses a new address too.
    const late = SmtpTranscript.wrap(await viaBalancer(h.ports['behind-proxy']!, '203.0.113.99'));
    await late.expect(/^421 4\.7\.0 Too many connections, try again later\r\n$/);
    await late.waitClosed();
    assert.deepEqual(await refusedCounts(h.app, 'smtp'), { 'per-ip': 2, total: 1 });

    // The flood ends: the slots are released when the sockets close, and 127.0.0.1 gets in twice again.
    for (const t of [...holders, other, ...trusted]) t.close();
    const deadline = Date.now() + 15_000;
    for (;;) {
      const again = [await SmtpTranscript.connect(h.ports.submission!), await SmtpTranscript.connect(h.ports.submission!)];
      const greeted = await Promise.all(again.map((t) => t.expect(/^\d{3} /).then((r) => r.startsWith('220 '))));
      again.forEach((t) => t.close());
      if (greeted.every(Boolean)) break;
      assert.ok(Date.now() < deadline, 'slots not released within 15 s of the flood ending');
      await new Promise((r) => setTimeout(r, 200));
    }
  });

});

describe('SMTP slow and idle clients before login (real sockets, real TLS)', () => {
  let h: SmtpHarness;
  before(async () => {
    h = await startSmtpHarness({ smtp: { login_timeout_seconds: LOGIN_TIMEOUT_S } });
  });
  after(async () => h.close());

  it('cuts off, at the login deadline counted from connecting, a client trickling a byte a second or saying nothing, in every phase', async () => {
    const min = LOGIN_TIMEOUT_S * 1000 - 500;
    const max = 25_000;
    const line = Buffer.from('EHLO a-client-that-never-finishes-its-line.example.com');
    const attempts = {
      // After the greeting, in plaintext: 421 4.4.2, then closed.
      plain: (async () => {
        const started = Date.now();
        const socket = connect(h.ports.submission!, '127.0.0.1');
        let got = '';
        socket.on('data', (d: Buffer) => (got += d.toString()));
        await once(socket, 'connect');
        const ms = await trickleUntilClosed(socket, line, started, max);
        return { ms, got };
      })(),
      // After the greeting, over implicit TLS: the 421 comes over TLS.
      implicitTls: (async () => {
        const started = Date.now();
        const socket = tlsConnect({ port: h.ports.submissions!, host: '127.0.0.1', rejectUnauthorized: false });
        let got = '';
        socket.on('data', (d: Buffer) => (got += d.toString()));
        await once(socket, 'secureConnect');
        const ms = await trickleUntilClosed(socket, line, started, max);
        return { ms, got };
      })(),
      // During the TLS handshake: a ClientHello record announced, its bytes trickled.
      tlsHandshake: (async () => {
        const started = Date.now();
        const socket = connect(h.ports.submissions!, '127.0.0.1');
        await once(socket, 'connect');
        const ms = await trickleUntilClosed(socket, Buffer.from([0x16, 0x03, 0x01, 0x02, 0x00, 0x01, 0x00, 0x01, 0xfc, 0x03, 0x03, 0, 0, 0, 0, 0, 0]), started, max);
        return { ms, got: '' };
      })(),
      // During the PROXY header from the balancer's address.
      proxyHeader: (async () => {
        const started = Date.now();
        const socket = connect(h.ports['behind-proxy']!, '127.0.0.1');
        await once(socket, 'connect');
        const ms = await trickleUntilClosed(socket, Buffer.from(proxyV1('203.0.113.20', 587)), started, max);
        return { ms, got: '' };
      })(),
      // Idle after the greeting: no byte at all.
      idle: (async () => {
        const started = Date.now();
        const socket = connect(h.ports.submission!, '127.0.0.1');
        let got = '';
        socket.on('data', (d: Buffer) => (got += d.toString()));
        await once(socket, 'connect');
        const ms = await trickleUntilClosed(socket, Buffer.alloc(0), started, max);
        return { ms, got };
      })(),
    };
    const results = Object.fromEntries(await Promise.all(Object.entries(attempts).map(async ([k, p]) => [k, await p] as const)));
    for (const [phase, { ms, got }] of Object.entries(results)) {
      assert.ok(ms >= min && ms <= max, `${phase}: closed after ${ms} ms, expected about ${LOGIN_TIMEOUT_S} s`);
      if (phase === 'plain' || phase === 'implicitTls' || phase === 'idle') {
        assert.match(got, /^220 [^\r\n]*\r\n421 4\.4\.2 No login in time, closing connection\r\n$/, phase);
      }
    }
  });
});

describe('SMTP: many slow clients before login hold memory bounded by the command line limit', () => {
  // passgate runs in a process of its own: its memory is measured, not the clients' (they stay in this process).
  let gateway: HarnessProcess;
  before(async () => {
    gateway = await HarnessProcess.start('smtp', { smtp: { max_connections: 1000, login_timeout_seconds: 120 } });
  });
  after(async () => gateway.close());

  it('200 clients each trickling an unfinished line: memory passgate retains per client stays near what it sent, and beyond 16 KiB it is cut off', async () => {
    const N = 200;
    const base = await gateway.retained();
    const clients = await Promise.all(
      Array.from({ length: N }, async () => {
        const t = await SmtpTranscript.connect(gateway.ports['lan-local']!);
        await t.expect(/^220 /);
        return t;
      }),
    );
    const connected = await gateway.retained();
    // 12 KiB each, in 1 KiB pieces (one write per turn of the event loop), no line end: all of it is a pending
    // command line the server must hold.
    const piece = 'x'.repeat(1024);
    for (let i = 0; i < 12; i++) {
      clients.forEach((t) => t.write(i === 0 ? `EHLO ${piece.slice(5)}` : piece));
      await new Promise((r) => setImmediate(r));
    }
    // Waits until passgate holds at least what was sent (it cannot hold less and still have the lines), so the
    // upper bound below is measured with every byte in, never vacuously early.
    const holding = await heldAtLeast(gateway, connected, N * 12 * 1024);
    const perClientKiB = (holding - connected) / N / 1024;
    // Another 8 KiB each: past smtp-server's 16 KiB command line limit, the line is dropped and the client closed.
    clients.forEach((t) => t.write('y'.repeat(8 * 1024)));
    await Promise.all(clients.map((t) => t.waitClosed(30_000)));
    const after = await gateway.retainedAfterClose(base, N * 4 * 1024);
    console.log(
      `# ${N} slow SMTP clients, passgate's process: connected +${((connected - base) / N / 1024).toFixed(1)} KiB/client, ` +
        `holding 12 KiB lines +${perClientKiB.toFixed(1)} KiB/client, after cut-off ${((after - base) / 1024).toFixed(0)} KiB over baseline`,
    );
    assert.ok(perClientKiB < 48, `each slow client retained ${perClientKiB.toFixed(1)} KiB for 12 KiB sent`);
    assert.ok(after - base < N * 8 * 1024, `after the cut-off ${after - base} bytes are still retained`);
  });
});
