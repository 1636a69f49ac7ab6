import { once } from 'node:events';
import { connect, type Socket } from 'node:net';
import { connect as tlsConnect, type TLSSocket } from 'node:tls';
import { setFlagsFromString } from 'node:v8';
import { runInNewContext } from 'node:vm';
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

/** Heap plus Buffer memory after a full collection: what a test holding many connections can compare. */
export function retainedBytes(): number {
  const gc = collector();
  gc();
  gc();
  const { heapUsed, arrayBuffers } = process.memoryUsage();
  return heapUsed + arrayBuffers;
}

let gcFunction: (() => void) | null = null;
function collector(): () => void {
  if (!gcFunction) {
    setFlagsFromString('--expose_gc');
    gcFunction = runInNewContext('gc') as () => void;
  }
  return gcFunction;
}

/** passgate_connections_refused_total of one protocol, by reason, read from the app's registry. */
export async function refusedCounts(app: App, protocol: 'smtp' | 'imap'): Promise<Record<string, number>> {
  const { values } = await app.metrics.connectionsRefused.get();
  return Object.fromEntries(values.filter((v) => v.labels.protocol === protocol).map((v) => [String(v.labels.reason), v.value]));
}

/**
 * Retained bytes once closed sockets are freed: they go over the next seconds (the close timers of smtp-server
 * and of the IMAP session), so poll until less than `slack` is left over `base`, for at most 20 s.
 */
export async function retainedAfterClose(base: number, slack: number): Promise<number> {
  let after = retainedBytes();
  for (const until = Date.now() + 20_000; after - base >= slack && Date.now() < until; after = retainedBytes()) {
    await new Promise((r) => setTimeout(r, 1000));
  }
  return after;
}
