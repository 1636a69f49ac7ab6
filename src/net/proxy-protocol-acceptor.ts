import type { Socket } from 'node:net';
import { GatewayError } from '../core/gateway-error.js';
import type { NetworkList } from '../core/network-list.js';
import { parseProxyHeader, PROXY_HEADER_MAX_LENGTH, type ProxyParseResult } from './proxy-protocol-parser.js';

/** A connection as the protocol server should see it: the real client's address, the stream after the header. */
export interface ProxiedConnection {
  socket: Socket;
  clientIp: string;
  clientPort: number;
  /** True when the address came from a PROXY header; false for direct peers, LOCAL and UNKNOWN/UNSPEC headers. */
  proxied: boolean;
}

export interface AcceptProxiedOptions {
  /** The listener's `proxy_protocol_from`: peers that must send a PROXY header. Empty: nobody does. */
  trusted: NetworkList;
  /** How long a trusted peer has to deliver the whole header. */
  timeoutMs: number;
}

/**
 * Reads the PROXY header (HAProxy proxy-protocol.txt, v1 or v2) from a connection whose peer is a trusted load
 * balancer, and hands back the socket positioned at the client's first byte. The spec (§2, "must not start
 * processing the connection before it receives a complete and valid PROXY protocol header") and its security
 * section ask the receiver to require the header from configured peers only: a header from anyone else would let
 * a client pick its own address (and with it rate limits and allowed networks), so an untrusted peer's bytes are
 * never read here.
 *
 * On success the socket is left as a fresh one: no listeners of ours, flowing state back to "not yet decided",
 * bytes after the header unshifted so the next reader (smtp-server, a TLS wrap) sees them first. The caller
 * attaches its own 'error' listener straight away. Failures destroy the socket and reject with PG_INVALID_INPUT.
 */
export async function acceptProxied(socket: Socket, options: AcceptProxiedOptions): Promise<ProxiedConnection> {
  const peerIp = socket.remoteAddress;
  const peerPort = socket.remotePort ?? 0;
  if (peerIp === undefined) {
    // Node leaves remoteAddress undefined once the connection is gone: there is no client to serve.
    socket.destroy();
    throw new GatewayError('PG_INVALID_INPUT', 'connection closed before its peer address was known');
  }
  if (options.trusted.size === 0 || !options.trusted.contains(peerIp)) {
    return { socket, clientIp: peerIp, clientPort: peerPort, proxied: false };
  }
  const result = await readHeader(socket, peerIp, options.timeoutMs);
  if (result.command === 'local' || result.source === null) {
    // §2.2 LOCAL (the balancer's health check), v1 UNKNOWN, v2 AF_UNSPEC: use the real connection's endpoints.
    return { socket, clientIp: peerIp, clientPort: peerPort, proxied: false };
  }
  return { socket, clientIp: result.source.address, clientPort: result.source.port, proxied: true };
}

type OkResult = Extract<ProxyParseResult, { kind: 'ok' }>;

/**
 * Reads just enough bytes for the parser to decide, within `timeoutMs`, and unshifts what follows the header.
 * Every exit removes what it attached and clears the timer.
 */
function readHeader(socket: Socket, peerIp: string, timeoutMs: number): Promise<OkResult> {
  return new Promise((resolve, reject) => {
    let received = Buffer.alloc(0);
    let settled = false;

    const cleanup = () => {
      settled = true;
      clearTimeout(timer);
      socket.off('readable', onReadable);
      socket.off('end', onClosed);
      socket.off('close', onClosed);
      socket.off('error', onError);
    };
    const fail = (why: string, cause?: unknown) => {
      if (settled) return;
      cleanup();
      socket.destroy();
      // The message names the peer (the balancer) and the config key, never the bytes it sent.
      const message = `PROXY header from ${peerIp} refused: ${why} (the peer is in proxy_protocol_from, so a header is required)`;
      reject(new GatewayError('PG_INVALID_INPUT', message, cause === undefined ? undefined : { cause }));
    };
    const onClosed = () => fail('connection closed before the header was complete');
    const onError = (error: Error) => fail('socket error before the header was complete', error);

    function onReadable() {
      while (!settled) {
        // Take at most what the parser could still need, so a chatty peer never makes us buffer more.
        const want = Math.min(socket.readableLength, PROXY_HEADER_MAX_LENGTH - received.length);
        // read() with nothing buffered returns null and lets the stream emit 'end' when the peer has closed.
        const chunk = (want > 0 ? socket.read(want) : socket.read()) as Buffer | null;
        if (chunk === null) return;
        received = Buffer.concat([received, chunk]);
        const result = parseProxyHeader(received);
        if (result.kind === 'invalid') return fail(result.reason);
        if (result.kind === 'ok') {
          cleanup();
          // Put the client's bytes back now, in this tick: a pending end-of-stream then waits for them.
          if (received.length > result.length) socket.unshift(received.subarray(result.length));
          return resolve(result);
        }
        if (received.length >= PROXY_HEADER_MAX_LENGTH) return fail('header longer than any valid one');
      }
    }

    const timer = setTimeout(() => fail(`no complete header within ${timeoutMs} ms`), timeoutMs);
    socket.on('error', onError);
    socket.on('end', onClosed);
    socket.on('close', onClosed);
    // Paused mode ('readable' + read(n)) rather than 'data': no chunk can slip past us to a later listener, and
    // removing the listener returns the stream to its initial flowing state for the next consumer.
    socket.on('readable', onReadable);
    if (socket.destroyed) fail('connection closed before the header was complete');
  });
}
