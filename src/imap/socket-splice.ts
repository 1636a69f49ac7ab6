import type { Socket } from 'node:net';

export type SpliceEnd = 'client-closed' | 'upstream-closed' | 'idle' | 'error' | 'revoked' | 'expired' | 'shutdown';

export interface SpliceOptions {
  /** Closed when neither side sent anything for this long. */
  idleTimeoutMs: number;
  onBytes?: (direction: 'client-to-upstream' | 'upstream-to-client', bytes: number) => void;
  onEnd: (reason: SpliceEnd, totals: { fromClient: number; fromUpstream: number }) => void;
}

export interface Splice {
  /** Ends both sides once; `farewell` is written to the client first (e.g. `* BYE ...`). Idempotent. */
  close(reason: SpliceEnd, farewell?: string): void;
}

/**
 * After login passgate is a byte pipe (RFC 3501 leaves nothing to translate): client and upstream are piped both
 * ways with stream backpressure, no parsing, no buffering beyond the sockets' own. Every end — either side
 * closing or failing, the idle timer, a revocation, shutdown — funnels into one close that ends both sockets.
 */
export function spliceSockets(client: Socket, upstream: Socket, options: SpliceOptions): Splice {
  let closed = false;
  let lastActivity = Date.now();
  const totals = { fromClient: 0, fromUpstream: 0 };
  const close = (reason: SpliceEnd, farewell?: string) => {
    if (closed) return;
    closed = true;
    clearInterval(idleTimer);
    client.unpipe(upstream);
    upstream.unpipe(client);
    if (farewell && client.writable) client.end(farewell);
    else client.end();
    upstream.end();
    // Half-closed sockets must not linger: destroy both once the farewell had its chance to go out.
    setTimeout(() => {
      client.destroy();
      upstream.destroy();
    }, 1000).unref();
    options.onEnd(reason, totals);
  };

  client.on('data', (chunk: Buffer) => {
    totals.fromClient += chunk.length;
    lastActivity = Date.now();
    options.onBytes?.('client-to-upstream', chunk.length);
  });
  upstream.on('data', (chunk: Buffer) => {
    totals.fromUpstream += chunk.length;
    lastActivity = Date.now();
    options.onBytes?.('upstream-to-client', chunk.length);
  });
  client.pipe(upstream, { end: false });
  upstream.pipe(client, { end: false });
  client.on('end', () => close('client-closed'));
  client.on('close', () => close('client-closed'));
  upstream.on('end', () => close('upstream-closed'));
  upstream.on('close', () => close('upstream-closed'));
  client.on('error', () => close('error'));
  upstream.on('error', () => close('error'));
  client.setTimeout(0);
  upstream.setTimeout(0);
  const idleTimer = setInterval(() => {
    if (Date.now() - lastActivity >= options.idleTimeoutMs) close('idle', '* BYE Idle for too long\r\n');
  }, Math.min(60_000, Math.max(1000, options.idleTimeoutMs / 4)));
  idleTimer.unref();
  return { close };
}
