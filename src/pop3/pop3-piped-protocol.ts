import type { Pop3Metrics } from '../core/pop3-metrics.js';
import type { PipedProtocol } from '../net/piped-protocol.js';
import { POP3_REPLIES } from './pop3-replies.js';
import { Pop3Session } from './pop3-session.js';

/**
 * POP3 as the shared listener runs it (110 STLS, 995 implicit TLS, or a plaintext LAN port): its session, its
 * refusal of a connection over the caps, and its end at shutdown.
 */
export const pop3PipedProtocol: PipedProtocol<Pop3Session, Pop3Metrics> = {
  name: 'pop3',
  refusalLine: (reason) => (reason === 'per-ip' ? POP3_REPLIES.tooManyConnectionsFromIp : POP3_REPLIES.tooManyConnections),
  createSession: (socket, client, deps, options) => new Pop3Session(socket, client, deps, options),
  // `-ERR` before login; after it, a plain close of the pipe (a line could land inside a message).
  endAtShutdown: (session) => session.end(POP3_REPLIES.shutdown),
};
