import { once } from 'node:events';
import { connect, type Socket } from 'node:net';
import { connect as tlsConnect, type TLSSocket } from 'node:tls';
import type { App } from '../../src/app.js';

/** A PROXY v1 line as a listed balancer sends it, naming `source` as the client (HAProxy proxy-protocol.txt §2.1). */
export const proxyV1 = (source: string, port: number): string =>
  `PROXY ${source.includes(':') ? 'TCP6' : 'TCP4'} ${source} ${source.includes(':') ? '::1' : '127.0.0.1'} 40000 ${port}\r\n`;

/** A connection through the balancer: the PROXY header for `source`, then (optionally) TLS on top. */
export async function viaBalancer(port: number, source: string, options: { tls?: boolean } = {}): Promise<Socket | TLSSocket> {
  const socket = connect(port, '127.0.0.1');
  await once(socket, 'connect');
  socket.write(proxyV1(source, port));
  if (!options.tls) return socket;
  const secure = tlsConnect({ socket, rejectUnauthorized: false });
  await once(secure, 'secureConnect');
  return secure;
}

/**
 * Writes `bytes` one at a time, one every `intervalMs`, until they run out or the socket closes: the client that
 * never completes a line. Resolves with the milliseconds from `startedAt` to the close (or rejects after `limitMs`).
 */
export function trickleUntilClosed(socket: Socket | TLSSocket, bytes: Buffer, startedAt: number, limitMs: number, intervalMs = 1000): Promise<number> {
  return new Promise((resolve, reject) => {
    let i = 0;
    socket.on('error', () => {});
    const timer = setInterval(() => {
      if (i < bytes.length && !socket.destroyed) socket.write(bytes.subarray(i, ++i));
    }, intervalMs);
    const limit = setTimeout(() => {
      clearInterval(timer);
      socket.destroy();
      reject(new Error(`still open after ${limitMs} ms`));
    }, limitMs);
    socket.once('close', () => {
      clearInterval(timer);
      clearTimeout(limit);
      resolve(Date.now() - startedAt);
    });
  });
}

/** passgate_connections_refused_total of one protocol, by reason, read from the app's registry. */
export async function refusedCounts(app: App, protocol: 'smtp' | 'imap'): Promise<Record<string, number>> {
  const { values } = await app.metrics.connectionsRefused.get();
  return Object.fromEntries(values.filter((v) => v.labels.protocol === protocol).map((v) => [String(v.labels.reason), v.value]));
}

/**
 * The gateway's retained bytes once it holds at least `bytes` more than `from` (what its clients sent and it must
 * keep), polled every 100 ms for at most 20 s; the last reading either way (the caller's bound then fails).
 */
export async function heldAtLeast(gateway: { retained(): Promise<number> }, from: number, bytes: number): Promise<number> {
  let now = await gateway.retained();
  for (const until = Date.now() + 20_000; now - from < bytes && Date.now() < until; now = await gateway.retained()) {
    await new Promise((r) => setTimeout(r, 100));
  }
  return now;
}
