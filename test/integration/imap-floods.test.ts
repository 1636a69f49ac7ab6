import assert from 'node:assert/strict';
import { once } from 'node:events';
import { connect } from 'node:net';
import { after, before, describe, it } from 'node:test';
import { connect as tlsConnect } from 'node:tls';
import { startImapHarness, type ImapHarness } from '../helpers/imap-harness.js';
import { ImapTranscript } from '../helpers/imap-transcript.js';
import { HarnessProcess } from '../helpers/harness-process.js';
import { heldAtLeast, proxyV1, refusedCounts, trickleUntilClosed, viaBalancer } from '../helpers/slow-client.js';

const LOGIN_TIMEOUT_S = 5;


describe('IMAP floods (real sockets, real TLS, real Dovecot, PROXY headers from a listed balancer)', () => {
  let h: ImapHarness;
  before(async () => {
    h = await startImapHarness({
      imap: { max_connections: 6, max_connections_per_ip: 2, login_timeout_seconds: 30 },
      rateLimit: { trusted_networks: ['198.51.100.0/24'] },
    });
  });
  after(async () => h.close());

  it('a flood from one address gets * BYE on every listener while another client gets in and logs in; the total cap; slots come back on close', async () => {
    // Two logged-in sessions from 127.0.0.1 fill its share.
    const holders: ImapTranscript[] = [];
    for (let i = 0; i < 2; i++) {
      const t = await ImapTranscript.connect(h.ports.imaps!, { tls: true });
      await t.until(/^\* OK/);
      t.send(`a LOGIN ${h.user} ${h.password}`);
      await t.until(/^a OK/);
      holders.push(t);
    }
    // The caps are per protocol, not per port: refused on the 143-style and the 993-style listener alike.
    for (const [port, tls] of [
      [h.ports.imap!, false],
      [h.ports.imaps!, true],
    ] as const) {
      const t = await ImapTranscript.connect(port, { tls });
      assert.equal(await t.until(/^\* /), '* BYE Too many connections from your address\r\n');
      await t.waitClosed();
    }
    // Another client behind the balancer (counted by the address in its PROXY header): greeted, and logs in.
    const other = ImapTranscript.wrap(await viaBalancer(h.ports['behind-proxy']!, '203.0.113.10', { tls: true }));
    await other.until(/^\* OK/);
    other.send(`a LOGIN ${h.user} ${h.password}`);
    await other.until(/^a OK/);
    other.send('b SELECT INBOX');
    await other.until(/^b OK/);
    // A trusted network has no per-address cap: three from one trusted address, beyond max_connections_per_ip (2).
    const trusted: ImapTranscript[] = [];
    for (let i = 0; i < 3; i++) {
      const t = ImapTranscript.wrap(await viaBalancer(h.ports['behind-proxy']!, '198.51.100.7', { tls: true }));
      await t.until(/^\* OK/);
      trusted.push(t);
    }
    // Six open: the total cap refuses a new address too.
    const late = ImapTranscript.wrap(await viaBalancer(h.ports['behind-proxy']!, '203.0.113.99', { tls: true }));
    assert.equal(await late.until(/^\* /), '* BYE Too many connections, try again later\r\n');
    await late.waitClosed();
    assert.deepEqual(await refusedCounts(h.app, 'imap'), { 'per-ip': 2, total: 1 });

    // The flood ends: the slots are released when the sockets close, and 127.0.0.1 gets in twice again.
    for (const t of [...holders, other, ...trusted]) t.close();
    const deadline = Date.now() + 15_000;
    for (;;) {
      const again = [await ImapTranscript.connect(h.ports.imap!), await ImapTranscript.connect(h.ports.imap!)];
      const greeted = await Promise.all(again.map((t) => t.until(/^\* /).then((line) => line.startsWith('* OK'))));
      again.forEach((t) => t.close());
      if (greeted.every(Boolean)) break;
      assert.ok(Date.now() < deadline, 'slots not released within 15 s of the flood ending');
      await new Promise((r) => setTimeout(r, 200));
    }
  });
});

describe('IMAP slow and idle clients before login (real sockets, real TLS)', () => {
  let h: ImapHarness;
  before(async () => {
    h = await startImapHarness({ imap: { login_timeout_seconds: LOGIN_TIMEOUT_S } });
  });
  after(async () => h.close());

  it('cuts off, at the login deadline counted from connecting, a client trickling a byte a second or saying nothing, in every phase', async () => {
    const min = LOGIN_TIMEOUT_S * 1000 - 500;
    const max = 25_000;
    const line = Buffer.from('a LOGIN a-client-that-never-finishes-its-line@example.com');
    const watch = async (socket: ReturnType<typeof connect>, ready: string, bytes: Buffer, started: number) => {
      let got = '';
      socket.on('data', (d: Buffer) => (got += d.toString()));
      await once(socket, ready);
      const ms = await trickleUntilClosed(socket, bytes, started, max);
      return { ms, got };
    };
    const at = () => Date.now();
    const attempts = {
      // After the greeting, before STARTTLS on 143.
      plain: watch(connect(h.ports.imap!, '127.0.0.1'), 'connect', line, at()),
      // After the greeting on 993: the BYE comes over TLS.
      implicitTls: watch(tlsConnect({ port: h.ports.imaps!, host: '127.0.0.1', rejectUnauthorized: false }), 'secureConnect', line, at()),
      // During the TLS handshake: a ClientHello record announced, its bytes trickled.
      tlsHandshake: watch(
        connect(h.ports.imaps!, '127.0.0.1'),
        'connect',
        Buffer.from([0x16, 0x03, 0x01, 0x02, 0x00, 0x01, 0x00, 0x01, 0xfc, 0x03, 0x03, 0, 0, 0, 0, 0, 0]),
        at(),
      ),
      // During the PROXY header from the balancer's address.
      proxyHeader: watch(connect(h.ports['behind-proxy']!, '127.0.0.1'), 'connect', Buffer.from(proxyV1('203.0.113.20', 993)), at()),
      // Idle after the greeting: no byte at all.
      idle: watch(connect(h.ports.imap!, '127.0.0.1'), 'connect', Buffer.alloc(0), at()),
    };
    const results = Object.fromEntries(await Promise.all(Object.entries(attempts).map(async ([k, p]) => [k, await p] as const)));
    for (const [phase, { ms, got }] of Object.entries(results)) {
      assert.ok(ms >= min && ms <= max, `${phase}: closed after ${ms} ms, expected about ${LOGIN_TIMEOUT_S} s`);
      if (phase === 'plain' || phase === 'implicitTls' || phase === 'idle') {
        assert.match(got, /^\* OK [^\r\n]*\r\n\* BYE Autologout; no login in time\r\n$/, phase);
      } else {
        assert.equal(got, '', phase);
      }
    }
  });
});

describe('IMAP: many slow clients before login hold memory bounded by the line limit', () => {
  // passgate runs in a process of its own: its memory is measured, not the clients' (they stay in this process).
  let gateway: HarnessProcess;
  before(async () => {
    gateway = await HarnessProcess.start('imap', { imap: { max_connections: 1000, login_timeout_seconds: 120 } });
  });
  after(async () => gateway.close());

  it('200 clients each trickling an unfinished line: memory passgate retains per client stays near what it sent, and beyond 8 KiB it is cut off', async () => {
    const N = 200;
    const base = await gateway.retained();
    const clients = await Promise.all(
      Array.from({ length: N }, async () => {
        const t = await ImapTranscript.connect(gateway.ports.imap!);
        await t.until(/^\* OK/);
        return t;
      }),
    );
    const connected = await gateway.retained();
    // 6 KiB each, in 512-byte pieces (one write per turn of the event loop), no line end: a pending command line
    // the server must hold.
    const piece = 'x'.repeat(512);
    for (let i = 0; i < 12; i++) {
      clients.forEach((t) => t.write(i === 0 ? `a LOGIN ${piece.slice(8)}` : piece));
      await new Promise((r) => setImmediate(r));
    }
    // Waits until passgate holds at least what was sent, so the upper bound is never measured vacuously early.
    const holding = await heldAtLeast(gateway, connected, N * 6 * 1024);
    const perClientKiB = (holding - connected) / N / 1024;
    // Another 4 KiB each: past the 8 KiB line limit the session says BYE and closes.
    clients.forEach((t) => t.write('y'.repeat(4 * 1024)));
    await Promise.all(clients.map((t) => t.waitClosed(30_000)));
    const after = await gateway.retainedAfterClose(base, N * 4 * 1024);
    console.log(
      `# ${N} slow IMAP clients, passgate's process: connected +${((connected - base) / N / 1024).toFixed(1)} KiB/client, ` +
        `holding 6 KiB lines +${perClientKiB.toFixed(1)} KiB/client, after cut-off ${((after - base) / 1024).toFixed(0)} KiB over baseline`,
    );
    assert.ok(perClientKiB < 32, `each slow client retained ${perClientKiB.toFixed(1)} KiB for 6 KiB sent`);
    assert.ok(after - base < N * 8 * 1024, `after the cut-off ${after - base} bytes are still retained`);
  });
});
