import type { ListenerConfig } from '../config/config-schema.js';
import { NetworkList } from '../core/network-list.js';
import type { ConnectionGate } from '../net/connection-gate.js';
import { SessionListener } from '../net/session-listener.js';
import type { TlsCertificates } from '../tls/tls-certificates.js';
import { POP3_REPLIES } from './pop3-replies.js';
import { Pop3Session, type Pop3SessionDeps, type Pop3SessionOptions } from './pop3-session.js';

/** One POP3 listener (110 STLS, 995 implicit TLS, or a plaintext LAN port): accept, PROXY, TLS, session. */
export function pop3Listener(
  config: ListenerConfig,
  tls: TlsCertificates,
  deps: Pop3SessionDeps,
  options: Omit<Pop3SessionOptions, 'listener' | 'tlsMode' | 'tlsOptions' | 'plaintextAuth'>,
  /** The POP3 connection caps, shared by every POP3 listener. */
  gate: ConnectionGate,
): SessionListener<Pop3Session> {
  // What every session of this listener shares (one per listener, not one held by each session).
  const shared: Omit<Pop3SessionOptions, 'loginTimeoutMs'> = {
    ...options,
    listener: config.name,
    tlsMode: config.tls,
    tlsOptions: () => tls.serverOptions(config.min_tls_version),
    plaintextAuth: new NetworkList(config.plaintext_auth_from),
  };
  return new SessionListener<Pop3Session>(config, tls, {
    protocol: 'pop3',
    loginTimeoutMs: options.loginTimeoutMs,
    log: deps.log,
    gate,
    refusalLine: (reason) => (reason === 'per-ip' ? POP3_REPLIES.tooManyConnectionsFromIp : POP3_REPLIES.tooManyConnections),
    createSession: (socket, client, loginTimeoutMs) => new Pop3Session(socket, client, deps, { ...shared, loginTimeoutMs }),
    // `-ERR` before login; after it, a plain close of the pipe (a line could land inside a message).
    endAtShutdown: (session) => session.end(POP3_REPLIES.shutdown),
  });
}
