import type { Socket } from 'node:net';
import type { TlsOptions } from 'node:tls';
import type { ListenerConfig } from '../config/config-schema.js';
import type { Authenticator } from '../core/authenticator.js';
import type { ConnectionRefusal } from '../core/connection-limiter.js';
import type { EventLogger } from '../core/event-logger.js';
import type { LiveSessionRegistry } from '../core/live-session-registry.js';
import type { NetworkList } from '../core/network-list.js';
import type { MailboxUpstream } from '../core/ports/mailbox-upstream.js';
import type { Protocol } from '../core/protocol.js';

/** The client a session is made for: its real address (after PROXY), TLS state, an id, and the raw TCP socket. */
export interface AcceptedClient {
  ip: string;
  port: number;
  secure: boolean;
  id: string;
  wire: Socket;
}

/** What a session of a piped protocol (IMAP, POP3) works with; `M` is the protocol's metrics. */
export interface PipedSessionDeps<M> {
  authenticator: Authenticator;
  /** The mailbox upstream (a port): logs in as the mailbox and hands back the connection for the pipe. */
  upstream: MailboxUpstream;
  /** Ends sessions of revoked, expired or turned-off passwords; shared with SMTP, started by the composition root. */
  registry: LiveSessionRegistry;
  metrics: M;
  log: EventLogger;
}

/** A session's settings: its listener's (name, TLS, plaintext networks) and its protocol section's. */
export interface PipedSessionOptions {
  listener: string;
  tlsMode: 'starttls' | 'implicit' | 'none';
  /** Server-side TLS options for STARTTLS / STLS (the listener's minimum version). */
  tlsOptions: () => TlsOptions;
  plaintextAuth: NetworkList;
  maxFailures: number;
  maxCommands: number;
  /** What is left of the login deadline when the session starts (PROXY and TLS used part of it). */
  loginTimeoutMs: number;
  idleTimeoutMs: number;
}

/** The keys of a piped protocol's config section (`imap:`, `pop3:`) that the listeners read. */
export interface PipedProtocolConfig {
  listeners: ListenerConfig[];
  max_commands_before_login: number;
  login_timeout_seconds: number;
  idle_timeout_minutes: number;
}

/**
 * A protocol whose sessions become a byte pipe after login: what it brings to the shared listener (net/session-
 * listener.ts) is its session and its words. Everything else (accept, PROXY, caps, TLS, shutdown) is the same.
 */
export interface PipedProtocol<S extends { start(): void }, M> {
  name: Protocol;
  /** The one-line refusal of a connection over the caps (from the protocol's reply table). */
  refusalLine(reason: ConnectionRefusal): string;
  createSession(socket: Socket, client: AcceptedClient, deps: PipedSessionDeps<M>, options: PipedSessionOptions): S;
  /** Ends a session at shutdown, in the protocol's words. */
  endAtShutdown(session: S): void;
}
