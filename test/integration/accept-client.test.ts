import assert from 'node:assert/strict';
import { once } from 'node:events';
import { connect, createServer, type Socket } from 'node:net';
import { describe, it } from 'node:test';
import { ConnectionLimiter } from '../../src/core/connection-limiter.js';
import { NetworkList } from '../../src/core/network-list.js';
import { acceptClient, type AcceptOutcome } from '../../src/net/accept-client.js';
import { ConnectionGate } from '../../src/net/connection-gate.js';
import { generateSelfSignedCertificate } from '../../src/tls/self-signed-certificate.js';

/** The IMAP connection caps, generous, logging nowhere. */
function testGate(): ConnectionGate {
  const silent = { info() {}, warn() {}, error() {} };
  return new ConnectionGate('imap', new ConnectionLimiter({ maxTotal: 10, maxPerIp: 10, exempt: new NetworkList([]) }), {
    metrics: { refused() {} },
    log: silent,
    clock: () => Date.now(),
  });
}

describe('acceptClient on an implicit-TLS listener', () => {
  it('settles at once when the client closes cleanly in the middle of the TLS handshake (no 10 s timer left behind)', async () => {
    const pair = await generateSelfSignedCertificate({ commonName: 'localhost', dnsNames: ['localhost'], ipAddresses: ['127.0.0.1'] });
    const gate = testGate();
    const outcomes: Promise<{ outcome?: AcceptOutcome; error?: Error; ms: number }>[] = [];
    const server = createServer((raw: Socket) => {
      const start = Date.now();
      outcomes.push(
        acceptClient(raw, {
          listener: 'imaps',
          proxies: new NetworkList([]),
          implicitTls: { key: pair.key, cert: pair.cert },
          deadline: Date.now() + 60_000,
          gate,
          refusalLine: () => '* BYE',
        }).then(
          (outcome) => ({ outcome, ms: Date.now() - start }),
          (error: Error) => ({ error, ms: Date.now() - start }),
        ),
      );
    });
    server.listen(0, '127.0.0.1');
    await once(server, 'listening');
    try {
      const client = connect((server.address() as { port: number }).port, '127.0.0.1');
      await once(client, 'connect');
      client.write(Buffer.from([0x16, 0x03, 0x01, 0x00, 0x40])); // the start of a TLS record, then a clean FIN
      client.end();
      while (outcomes.length === 0) await new Promise((r) => setTimeout(r, 10));
      const result = await outcomes[0]!;
      assert.ok(result.error, 'the accept must fail');
      assert.ok(result.ms < 5000, `settled after ${result.ms} ms`);
    } finally {
      server.close();
    }
  });
});

describe('acceptClient: the PROXY header and the TLS handshake each have 10 s, apart from the login deadline', () => {
  it('drops a listed balancer that sends no header, and a client that never starts its handshake, after 10 s of a 60 s deadline', async () => {
    const pair = await generateSelfSignedCertificate({ commonName: 'localhost', dnsNames: ['localhost'], ipAddresses: ['127.0.0.1'] });
    const gate = testGate();
    const listen = async (options: { proxy: boolean; tls: boolean }) => {
      let settled!: Promise<{ error?: Error; ms: number }>;
      const server = createServer((raw: Socket) => {
        const start = Date.now();
        settled = acceptClient(raw, {
          listener: 'test',
          proxies: new NetworkList(options.proxy ? ['127.0.0.1/32'] : []),
          implicitTls: options.tls ? { key: pair.key, cert: pair.cert } : null,
          deadline: Date.now() + 60_000,
          gate,
          refusalLine: () => '* BYE',
        }).then(
          () => ({ ms: Date.now() - start }),
          (error: Error) => ({ error, ms: Date.now() - start }),
        );
      });
      server.listen(0, '127.0.0.1');
      await once(server, 'listening');
      const client = connect((server.address() as { port: number }).port, '127.0.0.1');
      client.on('error', () => {});
      await once(client, 'connect');
      while (!settled) await new Promise((r) => setImmediate(r));
      const closed = once(client, 'close');
      const result = await settled;
      await closed; // the silent client was disconnected
      server.close();
      return result;
    };
    const [proxy, tls] = await Promise.all([listen({ proxy: true, tls: false }), listen({ proxy: false, tls: true })]);
    for (const [what, result] of [['PROXY header', proxy], ['TLS handshake', tls]] as const) {
      assert.ok(result.error, `${what}: the accept fails`);
      assert.ok(result.ms >= 9_900 && result.ms < 50_000, `${what}: dropped after ${result.ms} ms, expected the 10 s cap, not the 60 s deadline`);
    }
  });
});

