import { once } from 'node:events';
import type { Socket } from 'node:net';
import { TLSSocket, type TlsOptions } from 'node:tls';
import type { NetworkList } from '../core/network-list.js';
import { acceptProxied } from './proxy-protocol-acceptor.js';

export interface AcceptedClient {
  socket: Socket;
  clientIp: string;
  clientPort: number;
  secure: boolean;
}

export interface AcceptClientOptions {
  /** Load balancers whose PROXY header names the client (listener `proxy_protocol_from`). */
  proxies: NetworkList;
  /** Options of a server-side TLSSocket: given for implicit-TLS listeners only. */
  implicitTls: TlsOptions | null;
  timeoutMs: number;
}

/**
 * What every listener does before its protocol starts: no-delay, the PROXY v1/v2 header from listed balancers,
 * then, on implicit-TLS listeners, the TLS handshake (bounded in time). Rejects (socket destroyed) when any
 * step fails; the caller logs and moves on.
 */
export async function acceptClient(raw: Socket, options: AcceptClientOptions): Promise<AcceptedClient> {
  raw.setNoDelay(true); // Nagle plus delayed ACKs would add ~40 ms to every reply
  raw.on('error', () => {}); // errors before the protocol owns the socket end in destroy below
  try {
    const proxied = await acceptProxied(raw, { trusted: options.proxies, timeoutMs: options.timeoutMs });
    if (!options.implicitTls) return { socket: proxied.socket, clientIp: proxied.clientIp, clientPort: proxied.clientPort, secure: false };
    const secure = new TLSSocket(proxied.socket, { isServer: true, ...options.implicitTls });
    const timer = setTimeout(() => secure.destroy(new Error('TLS handshake timeout')), options.timeoutMs);
    try {
      await once(secure, 'secure');
    } finally {
      clearTimeout(timer);
    }
    return { socket: secure, clientIp: proxied.clientIp, clientPort: proxied.clientPort, secure: true };
  } catch (error) {
    raw.destroy();
    throw error;
  }
}
