import type { Socket } from 'node:net';

export type SpliceEnd = 'client-closed' | 'upstream-closed' | 'idle' | 'error' | 'revoked' | 'expired' | 'shutdown';

export interface SpliceOptions {
  /** Closed when neither side sent anything for this long. */
  idleTimeoutMs: number;
  /** Written to the client when the idle timer ends the pipe (the protocol's own words, e.g. `* BYE ...\r\n`). */
  idleFarewell?: string;
  onBytes?: (direction: 'client-to-upstream' | 'upstream-to-client', bytes: number) => void;
  onEnd: (reason: SpliceEnd, totals: { fromClient: number; fromUpstream: number }) => void;
}

export interface Splice {
  /** Ends both sides once; `farewell` is written to the client first (e.g. `* BYE ...`). Idempotent. */
  close(reason: SpliceEnd, farewell?: string): void;
}

/**
 * After login passgate is a byte pipe (IMAP: RFC 3501 leaves nothing to translate; POP3 alike): each side's chunks are written to
 * the other with backpressure (a side whose peer cannot take more is paused until the peer drains), no parsing,
 * no buffering beyond the sockets' own. One 'data' listener per side does the counting and the forwarding:
 * `Readable.pipe` would add a dozen listeners and closures per pipe, held by every idle session. Every end —
 * either side closing or failing, the idle timer, a revocation, shutdown — funnels into one close that ends both
 * sockets.
 */
export function spliceSockets(client: Socket, upstream: Socket, options: SpliceOptions): Splice {
  let closed = false;
  let lastActivity = Date.now();
  const totals = { fromClient: 0, fromUpstream: 0 };
  const close = (reason: SpliceEnd, farewell?: string) => {
    if (closed) return;
    closed = true;
    clearInterval(idleTimer);
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

  const forward = (from: Socket, to: Socket, direction: 'client-to-upstream' | 'upstream-to-client') => {
    let draining = false;
    const resume = () => {
      draining = false;
      from.resume();
    };
    from.on('data', (chunk: Buffer) => {
      if (closed) return; // nothing crosses once the splice is closing
      if (direction === 'client-to-upstream') totals.fromClient += chunk.length;
      else totals.fromUpstream += chunk.length;
      lastActivity = Date.now();
      options.onBytes?.(direction, chunk.length);
      if (!to.write(chunk) && !draining) {
        draining = true;
        from.pause();
        to.once('drain', resume);
      }
    });
    // The client's socket was paused while passgate answered the login: both sides flow from here.
    from.resume();
  };
  forward(client, upstream, 'client-to-upstream');
  forward(upstream, client, 'upstream-to-client');
  const clientClosed = () => close('client-closed');
  const upstreamClosed = () => close('upstream-closed');
  const failed = () => close('error');
  client.on('end', clientClosed);
  client.on('close', clientClosed);
  upstream.on('end', upstreamClosed);
  upstream.on('close', upstreamClosed);
  client.on('error', failed);
  upstream.on('error', failed);
  client.setTimeout(0);
  upstream.setTimeout(0);
  const idleTimer = setInterval(() => {
    if (Date.now() - lastActivity >= options.idleTimeoutMs) close('idle', options.idleFarewell);
  }, Math.min(60_000, Math.max(1000, options.idleTimeoutMs / 4)));
  idleTimer.unref();
  return { close };
}
