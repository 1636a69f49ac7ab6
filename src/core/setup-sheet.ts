import type { AppPasswordView } from './app-password-record.js';
import type { Protocol } from './protocol.js';

/** How a device is told to secure a connection, in the words mail clients use. */
export type SetupTlsMode = 'STARTTLS' | 'SSL/TLS' | 'none';

/** One listener of this passgate, as a device should be configured for it. */
export interface SetupServer {
  host: string;
  port: number;
  tls: SetupTlsMode;
  /** The listener's name in the config (`smtp.listeners[].name`). */
  listener: string;
  /** Plain words on a limit of this listener (a `tls: none` listener takes logins from listed networks only). */
  note: string | null;
}

export interface SetupScope {
  protocol: Protocol;
  /** Configured listeners, in config order; empty when the protocol is not served (the note says why). */
  servers: SetupServer[];
  note: string | null;
}

/** What the certificate devices will see is; `self-signed` when no certificate is configured. */
export type SetupCertificate =
  | { kind: 'self-signed' }
  | { kind: 'configured'; selfSigned: boolean; coversHost: boolean; issuer: string | null; validTo: number | null }
  | { kind: 'unreadable'; error: string };

/** The device setup sheet of one app password: printed by the CLI, shown (and printable) in the portal. */
export interface SetupSheet {
  username: string;
  host: string;
  scopes: SetupScope[];
  certificate: SetupCertificate;
  /** Plain words on the certificate, for the person at the device. */
  certificateNote: string;
}

/** The listeners and certificate of this passgate, from its config (built in the composition root). */
export interface SetupTarget {
  /** The host name devices connect to (`app_passwords.setup_host`, else `smtp.hostname`, else the machine's). */
  host: string;
  /** Listeners per protocol, or null when the protocol is turned off (`smtp.enabled: false`). */
  listeners: Record<Protocol, { name: string; port: number; tls: 'starttls' | 'implicit' | 'none'; plaintextFrom: string[] }[] | null>;
  certificate: SetupCertificate;
}

const TLS_WORDS: Record<'starttls' | 'implicit' | 'none', SetupTlsMode> = { starttls: 'STARTTLS', implicit: 'SSL/TLS', none: 'none' };

/** For each of the password's scopes, the configured listeners, with the username and a note on the certificate. */
export function buildSetupSheet(target: SetupTarget, view: Pick<AppPasswordView, 'username' | 'scopes'>): SetupSheet {
  const scopes = view.scopes.map((protocol): SetupScope => {
    const listeners = target.listeners[protocol];
    if (listeners === null) return { protocol, servers: [], note: `${protocol.toUpperCase()} is not served by this passgate (${protocol}.enabled: false)` };
    const servers = listeners.map((l) => ({
      host: target.host,
      port: l.port,
      tls: TLS_WORDS[l.tls],
      listener: l.name,
      note: l.tls === 'none' ? `no encryption; accepted only from ${l.plaintextFrom.join(', ')}` : null,
    }));
    return { protocol, servers, note: servers.length === 0 ? `no ${protocol.toUpperCase()} listener is configured` : null };
  });
  return { username: view.username, host: target.host, scopes, certificate: target.certificate, certificateNote: certificateNote(target) };
}

function certificateNote(target: SetupTarget): string {
  const c = target.certificate;
  const fix = `configure tls.certificates with a certificate for ${target.host} from a public authority`;
  if (c.kind === 'self-signed') {
    return `This passgate uses a self-signed certificate: the device will warn that it cannot verify the server. Accept it once on the device, or ${fix}.`;
  }
  if (c.kind === 'unreadable') return `The configured certificate could not be read (${c.error}); devices may warn about it.`;
  if (c.selfSigned) return `The configured certificate is self-signed: the device will warn that it cannot verify the server. Accept it once, or ${fix}.`;
  if (!c.coversHost) return `The configured certificate does not name ${target.host}: the device will warn. Use a host name the certificate names, or ${fix}.`;
  return `The certificate names ${target.host}${c.issuer ? ` and is issued by ${c.issuer}` : ''}: devices that trust that authority connect without a warning.`;
}
