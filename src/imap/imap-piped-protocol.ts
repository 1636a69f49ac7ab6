import type { ImapMetrics } from '../core/imap-metrics.js';
import type { PipedProtocol } from '../net/piped-protocol.js';
import { IMAP_REPLIES } from './imap-replies.js';
import { ImapSession } from './imap-session.js';

/**
 * IMAP as the shared listener runs it (143 STARTTLS, 993 implicit TLS, or a plaintext LAN port): its session, its
 * refusal of a connection over the caps, and its BYE at shutdown.
 */
export const imapPipedProtocol: PipedProtocol<ImapSession, ImapMetrics> = {
  name: 'imap',
  refusalLine: (reason) => `* BYE ${reason === 'per-ip' ? IMAP_REPLIES.tooManyConnectionsFromIp : IMAP_REPLIES.tooManyConnections}`,
  createSession: (socket, client, deps, options) => new ImapSession(socket, client, deps, options),
  endAtShutdown: (session) => session.bye(IMAP_REPLIES.shutdown),
};
