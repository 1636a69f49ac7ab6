import { readFileSync } from 'node:fs';
import { GatewayError } from '../core/gateway-error.js';

/** Where a mailbox upstream (IMAP, POP3) is, and how passgate reaches it over TLS. */
export interface MailboxUpstreamTarget {
  host: string;
  port: number;
  tls: 'implicit' | 'starttls';
  /** PEM of the CA to trust besides Node's public roots (`<protocol>.upstream.ca_file`). */
  ca?: string | undefined;
  /** The name the certificate must carry (SNI), `servername` or else the host. */
  servername: string;
  timeoutMs: number;
}

/** The part of `imap.upstream` and `pop3.upstream` a target is made from. */
export interface MailboxUpstreamConfig {
  host: string;
  port: number;
  tls: 'implicit' | 'starttls';
  ca_file: string | null;
  servername?: string | null | undefined;
  connect_timeout_seconds: number;
}

/**
 * The target from its config section; `key` names it in errors (`imap.upstream`, `pop3.upstream`), so a CA file
 * that cannot be read says which key to fix. Throws PG_CONFIG_INVALID.
 */
export function mailboxUpstreamTarget(config: MailboxUpstreamConfig, key: string): MailboxUpstreamTarget {
  let ca: string | undefined;
  try {
    ca = config.ca_file === null ? undefined : readFileSync(config.ca_file, 'utf8');
  } catch (cause) {
    throw new GatewayError('PG_CONFIG_INVALID', `${key}.ca_file: cannot read ${config.ca_file}: ${(cause as Error).message}`, { cause });
  }
  return {
    host: config.host,
    port: config.port,
    tls: config.tls,
    ca,
    servername: config.servername ?? config.host,
    timeoutMs: config.connect_timeout_seconds * 1000,
  };
}
