import type { Socket } from 'node:net';
import type { TlsOptions } from 'node:tls';
import type { ConnectionRefusal } from '../core/connection-limiter.js';
import type { NetworkList } from '../core/network-list.js';
import type { ConnectionGate } from './connection-gate.js';
import { acceptProxied } from './proxy-protocol-acceptor.js';
import { serverTlsHandshake, serverTlsSocket } from './server-tls-handshake.js';

export interface AcceptedClient {
  socket: Socket;
  clientIp: string;
  clientPort: number;
  secure: boolean;
  /**
   * Gives the connection's slot back (idempotent). Done when the TCP socket closes; a protocol layer that takes
   * the socket over (smtp-server's STARTTLS removes every listener of the socket it upgrades) calls it when its
   * connection ends.
   */
  release: () => void;
}

export type AcceptOutcome =
  | { kind: 'accepted'; client: AcceptedClient }
  /** Over a cap: the client was told `refusalLine` (when the refusal budget allowed) and the socket is closing. */
  | { kind: 'refused'; clientIp: string; reason: ConnectionRefusal };

export interface AcceptClientOptions {
  /** The listener's name, for the refusal log. */
  listener: string;
  /** Load balancers whose PROXY header names the client (listener `proxy_protocol_from`). */
  proxies: NetworkList;
  /** Options of a server-side TLSSocket: given for implicit-TLS listeners only. */
  implicitTls: TlsOptions | null;
  /**
   * When the client must have logged in (ms since the epoch, `login_timeout_seconds` after the TCP accept). The
   * PROXY header and the TLS handshake count against it, so a client trickling one byte a second is cut off by
   * then whatever phase it is in.
   */
  deadline: number;
  /** The protocol's connection caps. */
  gate: ConnectionGate;
  /** The protocol's refusal, one line without CRLF (SMTP `421 4.7.0 ...`, IMAP `* BYE ...`). */
  refusalLine: (reason: ConnectionRefusal) => string;
}

/** A trusted balancer's PROXY header and the TLS handshake each get at most this long (and never past the deadline). */
export const HANDSHAKE_TIMEOUT_MS = 10_000;
/** A refused client has this long to take its reply (and, on implicit TLS, finish the handshake first). */
export const REFUSAL_TIMEOUT_MS = 5_000;

/**
 * What every listener does before its protocol starts: no-delay, the PROXY v1/v2 header from listed balancers,
 * the connection caps (counted against the real client address, so behind a balancer each client has its own
 * share), then, on implicit-TLS listeners, the TLS handshake. The slot is released when the TCP socket closes,
 * whoever closes it. Rejects (socket destroyed) when the header or the handshake fails; the caller logs.
 */
export async function acceptClient(raw: Socket, options: AcceptClientOptions): Promise<AcceptOutcome> {
  raw.setNoDelay(true); // Nagle plus delayed ACKs would add ~40 ms to every reply
  raw.on('error', () => {}); // errors before the protocol owns the socket end in destroy below
  const stepTimeout = () => Math.max(0, Math.min(HANDSHAKE_TIMEOUT_MS, options.deadline - Date.now()));
  try {
    const proxied = await acceptProxied(raw, { trusted: options.proxies, timeoutMs: stepTimeout() });
    const admission = options.gate.admit(proxied.clientIp, options.listener);
    if (!admission.ok) {
      refuse(proxied.socket, options, options.refusalLine(admission.reason));
      return { kind: 'refused', clientIp: proxied.clientIp, reason: admission.reason };
    }
    if (raw.closed) admission.release();
    else raw.once('close', admission.release);
    const client = { clientIp: proxied.clientIp, clientPort: proxied.clientPort, release: admission.release };
    if (!options.implicitTls) return { kind: 'accepted', client: { socket: proxied.socket, ...client, secure: false } };
    const secure = await serverTlsHandshake(proxied.socket, options.implicitTls, stepTimeout());
    return { kind: 'accepted', client: { socket: secure, ...client, secure: true } };
  } catch (error) {
    raw.destroy();
    throw error;
  }
}

/**
 * Tells a refused client why and closes: the reply first (over TLS on implicit-TLS listeners, where a client
 * could not read it otherwise), then our FIN; what the client sends meanwhile is read and dropped, so the close
 * is not turned into a reset that could discard the reply. Bounded in time, and in number by the gate.
 */
function refuse(socket: Socket, options: AcceptClientOptions, line: string): void {
  const ticket = options.gate.beginRefusal();
  if (!ticket) return void socket.destroy();
  const timer = setTimeout(() => socket.destroy(), REFUSAL_TIMEOUT_MS);
  socket.once('close', () => {
    clearTimeout(timer);
    ticket();
  });
  const say = (stream: Socket) => {
    stream.on('error', () => socket.destroy());
    stream.end(`${line}\r\n`);
    stream.resume();
  };
  if (!options.implicitTls) return say(socket);
  const secure = serverTlsSocket(socket, options.implicitTls);
  secure.on('error', () => socket.destroy());
  secure.once('secure', () => say(secure));
}
