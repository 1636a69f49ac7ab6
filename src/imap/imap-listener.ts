import type { ListenerConfig } from '../config/config-schema.js';
import { NetworkList } from '../core/network-list.js';
import type { ConnectionGate } from '../net/connection-gate.js';
import { SessionListener } from '../net/session-listener.js';
import type { TlsCertificates } from '../tls/tls-certificates.js';
import { IMAP_REPLIES } from './imap-replies.js';
import { ImapSession, type ImapSessionDeps, type ImapSessionOptions } from './imap-session.js';

/** One IMAP listener (143 STARTTLS, 993 implicit TLS, or a plaintext LAN port): accept, PROXY, TLS, session. */
export function imapListener(
  config: ListenerConfig,
  tls: TlsCertificates,
  deps: ImapSessionDeps,
  options: Omit<ImapSessionOptions, 'listener' | 'tlsMode' | 'tlsOptions' | 'plaintextAuth'>,
  /** The IMAP connection caps, shared by every IMAP listener. */
  gate: ConnectionGate,
): SessionListener<ImapSession> {
  // What every session of this listener shares (one per listener, not one held by each session).
  const shared: Omit<ImapSessionOptions, 'loginTimeoutMs'> = {
    ...options,
    listener: config.name,
    tlsMode: config.tls,
    tlsOptions: () => tls.serverOptions(config.min_tls_version),
    plaintextAuth: new NetworkList(config.plaintext_auth_from),
  };
  return new SessionListener<ImapSession>(config, tls, {
    protocol: 'imap',
    loginTimeoutMs: options.loginTimeoutMs,
    log: deps.log,
    gate,
    refusalLine: (reason) => `* BYE ${reason === 'per-ip' ? IMAP_REPLIES.tooManyConnectionsFromIp : IMAP_REPLIES.tooManyConnections}`,
    createSession: (socket, client, loginTimeoutMs) => new ImapSession(socket, client, deps, { ...shared, loginTimeoutMs }),
    endAtShutdown: (session) => session.bye(IMAP_REPLIES.shutdown),
  });
}
