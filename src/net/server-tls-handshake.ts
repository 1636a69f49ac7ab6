import { once } from 'node:events';
import type { Socket } from 'node:net';
import { TLSSocket, type TlsOptions } from 'node:tls';

/** The server side of TLS over an accepted socket: implicit TLS at accept, or STARTTLS (RFC 3207, RFC 3501 §6.2.1). */
export function serverTlsSocket(socket: Socket, tls: TlsOptions): TLSSocket {
  return new TLSSocket(socket, { isServer: true, ...tls });
}

/**
 * Waits for the handshake of a server-side TLSSocket, at most `timeoutMs` (then the socket is destroyed). Rejects
 * when it fails or the client goes away. A client that closes cleanly mid-handshake emits 'close' without an
 * 'error': that settles it too, or the timer (and the process, at shutdown) would wait out the timeout for a
 * connection that is gone. The close listener goes once the handshake is done: a session must not hold it (and its
 * promise) for its whole life.
 */
export async function completeServerTls(secure: TLSSocket, timeoutMs: number): Promise<void> {
  const timer = setTimeout(() => secure.destroy(new Error('TLS handshake timeout')), timeoutMs).unref();
  let onClose = () => {};
  const closed = new Promise<never>((_, reject) => {
    onClose = () => reject(new Error('closed during the TLS handshake'));
    secure.once('close', onClose);
  });
  closed.catch(() => {});
  try {
    await Promise.race([once(secure, 'secure'), closed]);
  } finally {
    clearTimeout(timer);
    secure.off('close', onClose);
  }
}

/** Both at once, for a caller that attaches nothing before the handshake is done (the accept path). */
export async function serverTlsHandshake(socket: Socket, tls: TlsOptions, timeoutMs: number): Promise<TLSSocket> {
  const secure = serverTlsSocket(socket, tls);
  await completeServerTls(secure, timeoutMs);
  return secure;
}
