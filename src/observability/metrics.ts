import { collectDefaultMetrics, Counter, Gauge, Histogram, Registry } from 'prom-client';
import type { AuthMetrics } from '../core/auth-metrics.js';
import type { ConnectionMetrics } from '../core/connection-metrics.js';
import type { ImapMetrics } from '../core/imap-metrics.js';
import type { SmtpMetrics } from '../core/smtp-metrics.js';
import type { TokenMetrics } from '../core/token-metrics.js';

/**
 * Every metric passgate exposes is defined here, once. Names follow Prometheus conventions
 * (`passgate_..._total` for counters, base units in the name).
 */
export class Metrics {
  readonly registry = new Registry();

  readonly authAttempts = new Counter({
    name: 'passgate_auth_attempts_total',
    help: 'Login attempts by protocol, result (success|failure) and reason',
    labelNames: ['protocol', 'result', 'reason'] as const,
    registers: [this.registry],
  });

  readonly credentialCache = new Counter({
    name: 'passgate_credential_cache_total',
    help: 'Successful verifications by whether the credential cache answered (hit) or argon2 ran (miss)',
    labelNames: ['result'] as const,
    registers: [this.registry],
  });

  readonly rateLimitBlocks = new Counter({
    name: 'passgate_rate_limit_blocks_total',
    help: 'Login attempts refused, or limits tripped, by the brute-force defence, by scope (pair|ip|user)',
    labelNames: ['scope'] as const,
    registers: [this.registry],
  });

  readonly tokenRequests = new Counter({
    name: 'passgate_token_requests_total',
    help: 'Requests to the OAuth provider by result (success|config|grant-lost|temporary)',
    labelNames: ['result'] as const,
    registers: [this.registry],
  });

  readonly tokenRequestDuration = new Histogram({
    name: 'passgate_token_request_duration_seconds',
    help: 'Latency of requests to the OAuth provider',
    buckets: [0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10],
    registers: [this.registry],
  });

  readonly tokenCacheHits = new Counter({
    name: 'passgate_token_cache_hits_total',
    help: 'Access tokens served from the cache without asking the provider',
    registers: [this.registry],
  });

  readonly smtpMessages = new Counter({
    name: 'passgate_smtp_messages_total',
    help: 'Messages submitted by clients, by result (accepted|refused|upstream-failed|too-big)',
    labelNames: ['result'] as const,
    registers: [this.registry],
  });

  readonly smtpBytes = new Counter({
    name: 'passgate_smtp_message_bytes_total',
    help: 'Message bytes streamed upstream, by result',
    labelNames: ['result'] as const,
    registers: [this.registry],
  });

  readonly imapBytes = new Counter({
    name: 'passgate_imap_proxied_bytes_total',
    help: 'Bytes passed between IMAP clients and the upstream after login, by direction',
    labelNames: ['direction'] as const,
    registers: [this.registry],
  });

  readonly imapSessions = new Gauge({
    name: 'passgate_imap_sessions',
    help: 'Logged-in IMAP sessions now open',
    registers: [this.registry],
  });

  readonly imapSessionsClosed = new Counter({
    name: 'passgate_imap_sessions_closed_total',
    help: 'Logged-in IMAP sessions ended, by reason (client-closed, upstream-closed, idle, revoked, ...)',
    labelNames: ['reason'] as const,
    registers: [this.registry],
  });

  readonly connectionsRefused = new Counter({
    name: 'passgate_connections_refused_total',
    help: 'Client connections refused at the door by protocol and reason (total|per-ip: which connection cap was full)',
    labelNames: ['protocol', 'reason'] as const,
    registers: [this.registry],
  });

  /** The listeners' view of the connection metrics (a core port). */
  connections(): ConnectionMetrics {
    return { refused: (protocol, reason) => this.connectionsRefused.inc({ protocol, reason }) };
  }

  private certificateSource: () => { name: string; notAfter: Date }[] = () => [];

  readonly certificateExpiry: Gauge<'name'> = new Gauge({
    name: 'passgate_tls_certificate_expiry_timestamp_seconds',
    help: 'When each served TLS certificate expires (Unix time), by certificate name',
    labelNames: ['name'] as const,
    registers: [this.registry],
    collect: (): void => {
      this.certificateExpiry.reset();
      for (const { name, notAfter } of this.certificateSource()) this.certificateExpiry.set({ name }, Math.floor(notAfter.getTime() / 1000));
    },
  });

  private hashQueueSource: () => number = () => 0;

  readonly hashQueueLength: Gauge = new Gauge({
    name: 'passgate_argon2_queue_length',
    help: 'argon2 operations waiting for a slot',
    registers: [this.registry],
    collect: (): void => this.hashQueueLength.set(this.hashQueueSource()),
  });

  constructor(options: { defaultMetrics?: boolean } = {}) {
    if (options.defaultMetrics) collectDefaultMetrics({ register: this.registry, prefix: 'passgate_' });
  }

  /** Where the certificate-expiry gauge reads the served certificates at scrape time. */
  observeCertificates(source: () => { name: string; notAfter: Date }[]): void {
    this.certificateSource = source;
  }

  /** Where the argon2 queue gauge reads its value at scrape time. */
  observeHashQueue(source: () => number): void {
    this.hashQueueSource = source;
  }

  /** The SMTP gateway's view of these metrics (a core port). */
  smtp(): SmtpMetrics {
    return {
      message: (result, bytes) => {
        this.smtpMessages.inc({ result });
        this.smtpBytes.inc({ result }, bytes);
      },
    };
  }

  /** The IMAP gateway's view of these metrics (a core port). */
  imap(): ImapMetrics {
    return {
      bytes: (direction, bytes) => this.imapBytes.inc({ direction }, bytes),
      sessionOpened: () => this.imapSessions.inc(),
      sessionClosed: (reason) => {
        this.imapSessions.dec();
        this.imapSessionsClosed.inc({ reason });
      },
    };
  }

  /** The token provider's view of these metrics (a core port). */
  tokens(): TokenMetrics {
    return {
      request: (result, seconds) => {
        this.tokenRequests.inc({ result });
        this.tokenRequestDuration.observe(seconds);
      },
      cacheHit: () => this.tokenCacheHits.inc(),
    };
  }

  /** The authenticator's view of these metrics (a core port). */
  auth(): AuthMetrics {
    return {
      attempt: (protocol, reason) => this.authAttempts.inc({ protocol, result: reason === 'ok' ? 'success' : 'failure', reason }),
      credentialCache: (hit) => this.credentialCache.inc({ result: hit ? 'hit' : 'miss' }),
      rateLimitBlock: (scope) => this.rateLimitBlocks.inc({ scope }),
    };
  }
}
