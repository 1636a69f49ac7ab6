import { once } from 'node:events';
import { connect as netConnect, type Socket } from 'node:net';
import { connect as tlsConnect, type TLSSocket } from 'node:tls';
import type { Pacing, Step } from './mutations.js';

export interface ClientRun {
  /** Everything the server sent, in order, plaintext and TLS parts together. */
  output: Buffer;
  /** The server closed the connection before the client ended it. */
  serverClosed: boolean;
  /**
   * How much of `output` had arrived when the client ended the connection (all of it if the server closed first):
   * only a farewell in that part must have been followed by the server's own close.
   */
  beforeClientEnd: number;
  /** The connection was closed (by either side) before the deadline. */
  closed: boolean;
}

export interface ClientRunOptions {
  port: number;
  /** Implicit TLS from the first byte. */
  tls?: boolean;
  pacing: Pacing;
  /** The server's last line said it accepted STARTTLS: only then does a TLS step start a handshake. */
  tlsAccepted: (lastLine: string) => boolean;
  /** The output holds the greeting. */
  greeted: (output: string) => boolean;
  /** Quiet this long means the server has answered what it will answer. */
  quietMs?: number;
  /** The server said it is closing: wait for it to close rather than closing first. */
  closing?: (output: string) => boolean;
  /** The client has all it waits for (checked before it ends the connection, for up to 5 s). */
  finished?: (output: string) => boolean;
  /** Never end the connection first: the case expects the server to close it (a limit). */
  waitForServerClose?: boolean;
  closeTimeoutMs?: number;
  /**
   * Lockstep waits for this (given the output since the last write) after a write that ends a line, instead of
   * for quiet: for transcripts that must see each answer, such as a login that takes a while the first time.
   */
  awaitReply?: (sinceWrite: string) => boolean;
}

/**
 * A fuzzing client on a real loopback socket: writes a transcript's steps with the given pacing, switches to TLS
 * where the transcript does and the server agreed, collects every byte the server sends, then ends and waits for
 * the close. It never throws for anything the server does: the caller checks the output against the invariants.
 */
export async function runClient(steps: readonly Step[], options: ClientRunOptions): Promise<ClientRun> {
  const quietMs = options.quietMs ?? 15;
  const chunks: Buffer[] = [];
  let serverClosed = false;
  let closed = false;
  let clientEnded = false;
  let lastData = Date.now();
  let socket: Socket | TLSSocket;
  const attach = (s: Socket | TLSSocket) => {
    s.on('data', (chunk: Buffer) => {
      chunks.push(chunk);
      lastData = Date.now();
    });
    s.on('error', () => {});
  };
  const watchClose = (s: Socket | TLSSocket) => {
    s.on('end', () => (serverClosed ||= !clientEnded));
    s.on('close', () => {
      if (!clientEnded) serverClosed = true;
      closed = true;
    });
  };
  socket = options.tls ? tlsConnect({ port: options.port, host: '127.0.0.1', rejectUnauthorized: false }) : netConnect({ port: options.port, host: '127.0.0.1' });
  socket.setNoDelay(true);
  attach(socket);
  watchClose(socket);
  try {
    await once(socket, options.tls ? 'secureConnect' : 'connect');
  } catch (cause) {
    // Never a pass with empty output: a case that did not reach the server tested nothing.
    throw new Error(`fuzz client could not connect to 127.0.0.1:${options.port}${options.tls ? ' over TLS' : ''}`, { cause });
  }
  const text = () => Buffer.concat(chunks).toString('latin1');
  /** Waits until the server has been quiet for quietMs (or closed, or maxMs passed). */
  const settle = async (maxMs: number, until?: () => boolean) => {
    const deadline = Date.now() + maxMs;
    lastData = Math.max(lastData, Date.now());
    while (!closed && Date.now() < deadline && !(until?.() ?? false) && Date.now() - lastData < quietMs) await sleep(Math.min(5, quietMs));
    if (until) while (!closed && Date.now() < deadline && !until()) await sleep(5);
  };

  // The caps below only bound a wait for an event (a greeting, a reply, a close): it returns as soon as the event
  // comes, so they are hang guards, generous for a loaded machine, never a speed limit.
  if (options.pacing !== 'early') await settle(EVENT_CAP_MS, () => options.greeted(text()));
  for (const step of steps) {
    if (closed || socket.destroyed) break;
    if ('tls' in step) {
      await settle(3000);
      const lines = text().split('\r\n');
      if (!options.tlsAccepted(lines.at(-2) ?? '')) continue;
      socket = await upgrade(socket, attach);
      if (socket.destroyed) break;
      continue;
    }
    const before = chunks.length;
    socket.write(step.send);
    if (options.pacing !== 'lockstep') continue;
    const awaitReply = options.awaitReply;
    if (awaitReply && step.send.at(-1) === 0x0a) await settle(EVENT_CAP_MS, () => awaitReply(Buffer.concat(chunks.slice(before)).toString('latin1')));
    else await settle(2000);
  }
  const finished = options.finished;
  await settle(finished ? EVENT_CAP_MS : 3000, finished ? () => finished(text()) : undefined);
  if (!closed && (options.waitForServerClose || options.closing?.(text()))) {
    // The server announced its close (BYE, 421): it must close by itself.
    const deadline = Date.now() + (options.closeTimeoutMs ?? EVENT_CAP_MS);
    while (!closed && Date.now() < deadline) await sleep(10);
  }
  let beforeClientEnd = -1;
  if (!closed) {
    beforeClientEnd = chunks.reduce((n, c) => n + c.length, 0);
    clientEnded = true;
    socket.end();
    const deadline = Date.now() + (options.closeTimeoutMs ?? EVENT_CAP_MS);
    while (!closed && Date.now() < deadline) await sleep(10);
  }
  socket.destroy();
  const output = Buffer.concat(chunks);
  return { output, serverClosed, closed, beforeClientEnd: beforeClientEnd < 0 ? output.length : beforeClientEnd };
}

/** How long a client waits at most for an event it expects (see run). */
const EVENT_CAP_MS = 20_000;

async function upgrade(plain: Socket | TLSSocket, attach: (s: TLSSocket) => void): Promise<Socket | TLSSocket> {
  plain.removeAllListeners('data');
  const secure = tlsConnect({ socket: plain, rejectUnauthorized: false });
  attach(secure);
  const timer = setTimeout(() => secure.destroy(), EVENT_CAP_MS);
  try {
    await once(secure, 'secureConnect');
  } catch {
    secure.destroy();
  } finally {
    clearTimeout(timer);
  }
  return secure;
}

export const sleep = (ms: number) => new Promise<void>((r) => setTimeout(r, ms));
