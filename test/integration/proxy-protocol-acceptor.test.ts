import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { once } from 'node:events';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { createServer, connect, Socket } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, describe, it } from 'node:test';
import { setImmediate as tick } from 'node:timers/promises';
import { TLSSocket, connect as tlsConnect } from 'node:tls';
import { isGatewayError } from '../../src/core/gateway-error.js';
import { NetworkList } from '../../src/core/network-list.js';
import { acceptProxied } from '../../src/net/proxy-protocol-acceptor.js';
import { skipWithout } from '../helpers/required-tool.js';

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));
const TRUSTED = new NetworkList(['127.0.0.0/8']);
const ELSEWHERE = new NetworkList(['10.0.0.0/8']);
const EHLO = 'EHLO x\r\n';

const V1 = Buffer.from('PROXY TCP4 192.0.2.10 198.51.100.1 52000 587\r\n');
/** v2 PROXY over TCP6 with one TLV (PP2_TYPE_AUTHORITY), built byte by byte. */
const V2 = Buffer.from([
  ...[0x0d, 0x0a, 0x0d, 0x0a, 0x00, 0x0d, 0x0a, 0x51, 0x55, 0x49, 0x54, 0x0a, 0x21, 0x21, 0x00, 36 + 7],
  ...[0x20, 0x01, 0x0d, 0xb8, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0x00, 0x10], // 2001:db8::10
  ...[0x20, 0x01, 0x0d, 0xb8, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0x00, 0x01], // 2001:db8::1
  ...[0x9c, 0x41, 0x01, 0xd1], // ports 40001 → 465
  ...[0x02, 0x00, 0x04, ...Buffer.from('mail')],
]);
const V2_LOCAL = Buffer.from([0x0d, 0x0a, 0x0d, 0x0a, 0x00, 0x0d, 0x0a, 0x51, 0x55, 0x49, 0x54, 0x0a, 0x20, 0x00, 0x00, 0x00]);

const OWN_EVENTS = ['data', 'readable', 'end', 'close', 'error'] as const;
const listenerCounts = (socket: Socket) => OWN_EVENTS.map((e) => `${e}=${socket.listenerCount(e)}`).join(' ');

const open: Socket[] = [];
afterEach(() => {
  for (const socket of open.splice(0)) socket.destroy();
});

/** A loopback connection: the client end, and the server end as a 'connection' listener receives it. */
async function connectPair(): Promise<{ client: Socket; server: Socket }> {
  const listener = createServer();
  listener.listen(0, '127.0.0.1');
  await once(listener, 'listening');
  const accepted = once(listener, 'connection') as Promise<[Socket]>;
  const client = connect((listener.address() as { port: number }).port, '127.0.0.1');
  client.setNoDelay(true);
  client.on('error', () => {}); // resets after the server destroys its end are expected
  await once(client, 'connect');
  const [server] = await accepted;
  server.on('error', () => {}); // the test's own safety net; the acceptor adds and removes its own
  listener.close();
  open.push(client, server);
  return { client, server };
}

/** What a protocol server would read: everything until the peer ends the stream. */
function readAll(socket: Socket): Promise<string> {
  return new Promise((resolve, reject) => {
    const chunks: Buffer[] = [];
    const timer = setTimeout(() => reject(new Error(`stream did not end; got ${JSON.stringify(Buffer.concat(chunks).toString())}`)), 3000);
    socket.on('data', (chunk: Buffer) => chunks.push(chunk));
    socket.once('end', () => (clearTimeout(timer), resolve(Buffer.concat(chunks).toString('latin1'))));
  });
}

async function writeByteByByte(socket: Socket, bytes: Buffer): Promise<void> {
  for (const byte of bytes) {
    socket.write(Buffer.from([byte]));
    await sleep(2);
  }
}

async function rejectsInvalidInput(promise: Promise<unknown>, pattern: RegExp): Promise<Error> {
  const error = await promise.then(
    () => assert.fail('expected acceptProxied to reject'),
    (e: unknown) => e as Error,
  );
  assert.ok(isGatewayError(error, 'PG_INVALID_INPUT'), String(error));
  assert.match(error.message, pattern);
  return error;
}

describe('acceptProxied over real sockets on 127.0.0.1', () => {
  for (const [name, header, clientIp, clientPort] of [
    ['v1', V1, '192.0.2.10', 52000],
    ['v2 TCP6 with a TLV', V2, '2001:db8::10', 40001],
  ] as const) {
    it(`${name} in one write with the first command: the header names the client, the consumer reads the rest`, async () => {
      const { client, server } = await connectPair();
      const before = listenerCounts(server);
      client.end(Buffer.concat([header, Buffer.from(EHLO)]));
      await sleep(50); // let header and command arrive together, so the command must be put back
      const result = await acceptProxied(server, { trusted: TRUSTED, timeoutMs: 2000 });
      assert.deepEqual({ ...result, socket: undefined }, { socket: undefined, clientIp, clientPort, proxied: true });
      assert.equal(result.socket, server);
      assert.equal(server.readableLength, EHLO.length, 'the bytes after the header were unshifted');
      assert.equal(listenerCounts(server), before, 'no listener of the acceptor left behind');
      await tick();
      assert.equal(server.readableFlowing, null, 'flowing state back to its initial value');
      assert.equal(await readAll(server), EHLO);
    });

    it(`${name} byte by byte: waits for the whole header, then the consumer reads exactly the command`, async () => {
      const { client, server } = await connectPair();
      const before = listenerCounts(server);
      const accepting = acceptProxied(server, { trusted: TRUSTED, timeoutMs: 5000 });
      await writeByteByByte(client, header);
      const result = await accepting;
      assert.equal(result.clientIp, clientIp);
      assert.equal(result.clientPort, clientPort);
      assert.equal(result.proxied, true);
      assert.equal(listenerCounts(server), before);
      const reading = readAll(server);
      await writeByteByByte(client, Buffer.from(EHLO));
      client.end();
      assert.equal(await reading, EHLO);
    });
  }

  it('a LOCAL header (health check) keeps the peer address and is not proxied', async () => {
    const { client, server } = await connectPair();
    client.end(Buffer.concat([V2_LOCAL, Buffer.from(EHLO)]));
    const result = await acceptProxied(server, { trusted: TRUSTED, timeoutMs: 2000 });
    assert.equal(result.proxied, false);
    assert.equal(result.clientIp, '127.0.0.1');
    assert.equal(result.clientPort, client.localPort);
    assert.equal(await readAll(server), EHLO);
  });

  for (const [name, trusted] of [
    ['not in the trusted list', ELSEWHERE],
    ['with an empty trusted list', new NetworkList([])],
  ] as const) {
    it(`an untrusted peer (${name}) is returned at once, its bytes untouched, even a PROXY header`, async () => {
      const { client, server } = await connectPair();
      const before = listenerCounts(server);
      // Resolves with nothing sent yet: no read is attempted.
      const result = await acceptProxied(server, { trusted, timeoutMs: 2000 });
      assert.deepEqual({ ...result, socket: undefined }, { socket: undefined, clientIp: '127.0.0.1', clientPort: client.localPort, proxied: false });
      assert.equal(listenerCounts(server), before);
      client.end(Buffer.concat([V1, Buffer.from(EHLO)]));
      assert.equal(await readAll(server), `${V1.toString('latin1')}${EHLO}`);
    });
  }

  it('a trusted peer that sends nothing is refused after timeoutMs and its socket destroyed', async () => {
    const { client, server } = await connectPair();
    const before = listenerCounts(server);
    const started = Date.now();
    const clientClosed = once(client, 'close');
    await rejectsInvalidInput(acceptProxied(server, { trusted: TRUSTED, timeoutMs: 200 }), /no complete header within 200 ms/);
    const elapsed = Date.now() - started;
    assert.ok(elapsed >= 190 && elapsed < 10_000, `rejected after ${elapsed} ms: at timeoutMs, not before (the ceiling only catches a hang)`);
    assert.equal(server.destroyed, true);
    assert.equal(listenerCounts(server), before);
    await clientClosed;
  });

  it('a trusted peer that sends a half header and then waits is refused at the timeout', async () => {
    const { client, server } = await connectPair();
    client.write(V1.subarray(0, 20));
    await rejectsInvalidInput(acceptProxied(server, { trusted: TRUSTED, timeoutMs: 200 }), /within 200 ms/);
    assert.equal(server.destroyed, true);
  });

  it('a trusted peer that starts with a command instead of a header is refused, and its data is not echoed', async () => {
    const { client, server } = await connectPair();
    const before = listenerCounts(server);
    const clientClosed = once(client, 'close');
    client.write('EHLO secret-host\r\n');
    const error = await rejectsInvalidInput(acceptProxied(server, { trusted: TRUSTED, timeoutMs: 2000 }), /does not start with a PROXY header/);
    assert.doesNotMatch(error.message, /EHLO|secret-host/);
    assert.match(error.message, /proxy_protocol_from/);
    assert.equal(server.destroyed, true);
    assert.equal(listenerCounts(server), before);
    await clientClosed;
  });

  it('a trusted peer sending an endless v1 line is refused once 107 bytes hold no CRLF', async () => {
    const { client, server } = await connectPair();
    client.write(`PROXY UNKNOWN ${'x'.repeat(4000)}`);
    await rejectsInvalidInput(acceptProxied(server, { trusted: TRUSTED, timeoutMs: 2000 }), /no CRLF within 107 bytes/);
  });

  it('a trusted peer that closes mid-header is refused', async () => {
    const { client, server } = await connectPair();
    const before = listenerCounts(server);
    const accepting = acceptProxied(server, { trusted: TRUSTED, timeoutMs: 2000 });
    client.end(V2.subarray(0, 20));
    await rejectsInvalidInput(accepting, /closed before the header was complete/);
    assert.equal(server.destroyed, true);
    assert.equal(listenerCounts(server), before);
  });

  it('a socket already gone (no peer address) is refused and destroyed', async () => {
    const socket = new Socket();
    await rejectsInvalidInput(acceptProxied(socket, { trusted: TRUSTED, timeoutMs: 2000 }), /before its peer address was known/);
    assert.equal(socket.destroyed, true);
  });

  it(
    'implicit TLS: the ClientHello that came with the header is unshifted and the handshake completes',
    { skip: skipWithout('openssl', ['version'], 'cannot make a throwaway certificate') },
    async () => {
      const dir = mkdtempSync(join(tmpdir(), 'passgate-proxy-tls-'));
      try {
        const keyFile = join(dir, 'key.pem');
        const certFile = join(dir, 'cert.pem');
        execFileSync('openssl', ['req', '-x509', '-newkey', 'rsa:2048', '-nodes', '-subj', '/CN=localhost', '-days', '1', '-keyout', keyFile, '-out', certFile], { stdio: 'ignore' });
        const key = readFileSync(keyFile);
        const cert = readFileSync(certFile);

        const { client, server } = await connectPair();
        // The balancer writes its header, then relays the client's ClientHello straight behind it.
        client.write(V2);
        const tlsClient = tlsConnect({ socket: client, servername: 'localhost', ca: cert });
        tlsClient.on('error', () => {});
        open.push(tlsClient);
        await sleep(100); // header and ClientHello now wait together in the server's buffer

        const result = await acceptProxied(server, { trusted: TRUSTED, timeoutMs: 2000 });
        assert.equal(result.clientIp, '2001:db8::10');
        assert.ok(result.socket.readableLength > 0, 'the ClientHello was put back for the TLS layer');
        const tlsServer = new TLSSocket(result.socket, { isServer: true, key, cert });
        tlsServer.on('error', () => {});
        open.push(tlsServer);

        await Promise.all([once(tlsServer, 'secure'), once(tlsClient, 'secureConnect')]);
        const reading = readAll(tlsServer);
        tlsClient.end(EHLO);
        assert.equal(await reading, EHLO);
      } finally {
        rmSync(dir, { recursive: true, force: true });
      }
    },
  );
});
