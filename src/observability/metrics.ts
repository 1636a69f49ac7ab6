import { collectDefaultMetrics, Counter, Gauge, Histogram, Registry } from 'prom-client';
import type { AuditMetrics } from '../core/audit-metrics.js';
import type { AuthMetrics } from '../core/auth-metrics.js';
import type { ConnectionMetrics } from '../core/connection-metrics.js';
import type { ImapMetrics } from '../core/imap-metrics.js';
import type { Pop3Metrics } from '../core/pop3-metrics.js';
import type { PasswordHasher } from '../core/password-hasher.js';
import type { PortalMetrics } from '../core/portal-metrics.js';
import { PROTOCOLS, type Protocol } from '../core/protocol.js';
import type { SessionMetrics } from '../core/session-metrics.js';
import type { UpstreamMetrics } from '../core/upstream-metrics.js';
import type { SmtpMetrics } from '../core/smtp-metrics.js';
import type { TokenMetrics } from '../core/token-metrics.js';
import type { TransportMetrics } from '../core/transport-metrics.js';
import { PASSGATE_VERSION } from '../version.js';

/** Seconds: connecting to and logging in upstream (10 ms on a LAN to 30 s for a provider in trouble). */
const UPSTREAM_LOGIN_BUCKETS = [0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30];

/**
 * Every metric passgate exposes is defined here, once. Names follow Prometheus conventions
 * (`passgate_..._total` for counters, base units in the name: `_seconds`, `_bytes`). docs/operations.md lists them.
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

  readonly transportMessages = new Counter({
    name: 'passgate_smtp_transport_messages_total',
    help: 'SMTP messages by the transport that carried them (smtp|graph) and the verdict after DATA (accepted|refused|failed)',
    labelNames: ['transport', 'result'] as const,
    registers: [this.registry],
  });

  readonly transportDuration = new Histogram({
    name: 'passgate_smtp_transport_message_duration_seconds',
    help: 'From the end of the client\'s message to the transport\'s verdict (Graph: every request of the message)',
    labelNames: ['transport'] as const,
    buckets: [0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60],
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

  readonly tokenInvalidations = new Counter({
    name: 'passgate_token_invalidations_total',
    help: 'Cached access tokens dropped before expiry because the upstream refused them, by reason (smtp-refused|imap-refused|pop3-refused)',
    labelNames: ['reason'] as const,
    registers: [this.registry],
  });

  readonly smtpMessages = new Counter({
    name: 'passgate_smtp_messages_total',
    help: 'Messages submitted by clients, by result (accepted|refused|upstream-failed|too-big)',
    labelNames: ['result'] as const,
    registers: [this.registry],
  });

  readonly smtpContinuousErrorRefusals = new Counter({
    name: 'passgate_smtp_continuous_error_refusals_total',
    help: 'Submissions (recipients) passgate refused itself because the upstream kept refusing them with this enhanced code (5.2.251-5.2.255), to spare the mailbox Exchange Online\'s continuous-error throttling',
    labelNames: ['code'] as const,
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

  readonly pop3Bytes = new Counter({
    name: 'passgate_pop3_proxied_bytes_total',
    help: 'Bytes passed between POP3 clients and the upstream after login, by direction',
    labelNames: ['direction'] as const,
    registers: [this.registry],
  });

  readonly sessions = new Gauge({
    name: 'passgate_sessions',
    help: 'Client sessions open now, by protocol and state (unauthenticated|authenticated); their sum is the open connections',
    labelNames: ['protocol', 'state'] as const,
    registers: [this.registry],
  });

  readonly sessionsClosed = new Counter({
    name: 'passgate_sessions_closed_total',
    help: 'Client sessions ended, by protocol and reason (client-closed, logout, timeout, too-many-failures, idle, revoked, shutdown, ...)',
    labelNames: ['protocol', 'reason'] as const,
    registers: [this.registry],
  });

  readonly sessionDuration = new Histogram({
    name: 'passgate_session_duration_seconds',
    help: 'How long client sessions lasted, by protocol',
    labelNames: ['protocol'] as const,
    buckets: [0.1, 0.5, 1, 5, 15, 60, 300, 900, 3600, 14_400, 86_400],
    registers: [this.registry],
  });

  readonly upstreamConnectDuration = new Histogram({
    name: 'passgate_upstream_connect_duration_seconds',
    help: 'Connecting to the upstream mail server (TCP, TLS, greeting, EHLO/STARTTLS), by protocol and result',
    labelNames: ['protocol', 'result'] as const,
    buckets: UPSTREAM_LOGIN_BUCKETS,
    registers: [this.registry],
  });

  readonly upstreamAuthDuration = new Histogram({
    name: 'passgate_upstream_auth_duration_seconds',
    help: 'The XOAUTH2 login upstream, by protocol and result (success|rejected|failure)',
    labelNames: ['protocol', 'result'] as const,
    buckets: UPSTREAM_LOGIN_BUCKETS,
    registers: [this.registry],
  });

  readonly upstreamCommandDuration = new Histogram({
    name: 'passgate_upstream_command_duration_seconds',
    help: 'A relayed command to the upstream\'s reply, by protocol, command (MAIL, RCPT, DATA, BDAT: a chunk but the last, EOM: end of message to final reply, RSET, ...) and reply class',
    labelNames: ['protocol', 'command', 'result'] as const,
    buckets: [0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60],
    registers: [this.registry],
  });

  private poolSource: () => { busy: number; idle: number; waiting: number } = () => ({ busy: 0, idle: 0, waiting: 0 });

  readonly upstreamPoolSessions: Gauge<'state'> = new Gauge({
    name: 'passgate_smtp_upstream_pool_sessions',
    help: 'Upstream SMTP sessions in the pool, by state (busy: lent to a client or opening; idle: ready for reuse)',
    labelNames: ['state'] as const,
    registers: [this.registry],
    collect: (): void => {
      const { busy, idle } = this.poolSource();
      this.upstreamPoolSessions.set({ state: 'busy' }, busy);
      this.upstreamPoolSessions.set({ state: 'idle' }, idle);
    },
  });

  readonly upstreamPoolWaiting: Gauge = new Gauge({
    name: 'passgate_smtp_upstream_pool_waiting',
    help: 'SMTP clients waiting for an upstream session of their mailbox (all allowed ones are busy)',
    registers: [this.registry],
    collect: (): void => this.upstreamPoolWaiting.set(this.poolSource().waiting),
  });

  readonly upstreamPoolWaitTimeouts = new Counter({
    name: 'passgate_smtp_upstream_pool_wait_timeouts_total',
    help: 'SMTP clients that waited smtp.upstream.wait_seconds for an upstream session and were told to retry',
    registers: [this.registry],
  });

  readonly argon2Duration = new Histogram({
    name: 'passgate_argon2_duration_seconds',
    help: 'argon2id work once it has a slot (queue time excluded), by operation (verify|hash)',
    labelNames: ['operation'] as const,
    buckets: [0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5],
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

  private auditQueueSource: () => number = () => 0;

  readonly auditQueued: Gauge = new Gauge({
    name: 'passgate_audit_queued',
    help: 'Sign-in (audit) records held in memory because the store could not be written; written in order once it can',
    registers: [this.registry],
    collect: (): void => this.auditQueued.set(this.auditQueueSource()),
  });

  readonly auditDropped = new Counter({
    name: 'passgate_audit_dropped_total',
    help: 'Sign-in (audit) records never written: the outage buffer was full (oldest dropped), or records were still held at shutdown; each is logged at error level',
    registers: [this.registry],
  });

  private tokenSource: (() => Promise<{ state: string }[]>) | null = null;

  readonly tokenStates: Gauge<'state'> = new Gauge({
    name: 'passgate_oauth_tokens',
    help: 'OAuth grants by state (ok|needs-connect|failing|unknown): the app token, or each delegated mailbox; read from the token state at scrape time',
    labelNames: ['state'] as const,
    registers: [this.registry],
    collect: async (): Promise<void> => {
      if (!this.tokenSource) return;
      const counts: Record<string, number> = { ok: 0, 'needs-connect': 0, failing: 0, unknown: 0 };
      try {
        for (const { state } of await this.tokenSource()) counts[state] = (counts[state] ?? 0) + 1;
      } catch {
        return; // the store is down: passgate_ready says so; keep the last counts
      }
      for (const [state, count] of Object.entries(counts)) this.tokenStates.set({ state }, count);
    },
  });

  private readinessSource: (() => Promise<boolean>) | null = null;

  readonly ready: Gauge = new Gauge({
    name: 'passgate_ready',
    help: '1 when /readyz answers 200 (the store answers within 2 s and shutdown has not begun), 0 otherwise; checked at each scrape',
    registers: [this.registry],
    collect: async (): Promise<void> => {
      if (this.readinessSource) this.ready.set((await this.readinessSource()) ? 1 : 0);
    },
  });

  /** Always 1; its labels say which passgate and Node run (joined onto other series, or to see a rollout's progress). */
  readonly portalSignIns = new Counter({
    name: 'passgate_portal_sign_ins_total',
    help: 'Web portal sign-ins by result (ok|no-address|not-allowed|mfa-required|failed)',
    labelNames: ['result'] as const,
    registers: [this.registry],
  });

  readonly portalRefusals = new Counter({
    name: 'passgate_portal_refusals_total',
    help: 'Web portal requests refused before any change, by reason (csrf|forbidden|rate-limited)',
    labelNames: ['reason'] as const,
    registers: [this.registry],
  });

  readonly buildInfo = new Gauge({
    name: 'passgate_build_info',
    help: 'Always 1: the passgate version and Node.js version of this process',
    labelNames: ['version', 'node'] as const,
    registers: [this.registry],
  });

  constructor(options: { defaultMetrics?: boolean } = {}) {
    if (options.defaultMetrics) collectDefaultMetrics({ register: this.registry, prefix: 'passgate_' });
    this.buildInfo.set({ version: PASSGATE_VERSION, node: process.version }, 1);
    // Every protocol and state shows 0 from the start, so a dashboard draws a line rather than "no data".
    for (const protocol of PROTOCOLS) for (const state of ['unauthenticated', 'authenticated']) this.sessions.set({ protocol, state }, 0);
  }

  /** Where the certificate-expiry gauge reads the served certificates at scrape time. */
  observeCertificates(source: () => { name: string; notAfter: Date }[]): void {
    this.certificateSource = source;
  }

  /** Where the argon2 queue gauge reads its value at scrape time. */
  observeHashQueue(source: () => number): void {
    this.hashQueueSource = source;
  }

  /** Where the audit-queue gauge reads the records held during a store outage at scrape time. */
  observeAuditQueue(source: () => number): void {
    this.auditQueueSource = source;
  }

  /** Where the OAuth grant gauge reads the token states at scrape time. */
  observeTokens(source: () => Promise<{ state: string }[]>): void {
    this.tokenSource = source;
  }

  /** How the passgate_ready gauge checks readiness at scrape time (the ops server's /readyz logic). */
  observeReadiness(source: () => Promise<boolean>): void {
    this.readinessSource = source;
  }

  /** Where the upstream-pool gauges read the SMTP pool at scrape time. */
  observeUpstreamPool(source: () => { busy: number; idle: number; waiting: number }): void {
    this.poolSource = source;
  }

  /** Times every argon2 operation of `inner` (wrap it inside the concurrency bound, so queue time is excluded). */
  timeHasher(inner: PasswordHasher): PasswordHasher {
    const timed = async <T>(operation: 'hash' | 'verify', work: () => Promise<T>): Promise<T> => {
      const end = this.argon2Duration.startTimer({ operation });
      try {
        return await work();
      } finally {
        end();
      }
    };
    return {
      hash: (password) => timed('hash', () => inner.hash(password)),
      verify: (hash, password) => timed('verify', () => inner.verify(hash, password)),
      needsRehash: (hash) => inner.needsRehash(hash),
    };
  }

  /** The submission router's view: which transport carried each message (a core port). */
  transport(): TransportMetrics {
    return {
      message: (transport, result, seconds) => {
        this.transportMessages.inc({ transport, result });
        this.transportDuration.observe({ transport }, seconds);
      },
    };
  }

  /** The SMTP gateway's view of these metrics (a core port). */
  smtp(): SmtpMetrics {
    return {
      message: (result, bytes) => {
        this.smtpMessages.inc({ result });
        this.smtpBytes.inc({ result }, bytes);
      },
      poolWaitTimedOut: () => this.upstreamPoolWaitTimeouts.inc(),
      continuousErrorRefusal: (enhanced) => this.smtpContinuousErrorRefusals.inc({ code: enhanced }),
      sessions: this.sessionMetrics('smtp'),
      upstream: this.upstreamMetrics('smtp'),
    };
  }

  /** The IMAP gateway's view of these metrics (a core port). */
  imap(): ImapMetrics {
    return {
      bytes: (direction, bytes) => this.imapBytes.inc({ direction }, bytes),
      sessions: this.sessionMetrics('imap'),
      upstream: this.upstreamMetrics('imap'),
    };
  }

  /** The POP3 gateway's view of these metrics (a core port). */
  pop3(): Pop3Metrics {
    return {
      bytes: (direction, bytes) => this.pop3Bytes.inc({ direction }, bytes),
      sessions: this.sessionMetrics('pop3'),
      upstream: this.upstreamMetrics('pop3'),
    };
  }

  private sessionMetrics(protocol: Protocol): SessionMetrics {
    return {
      opened: () => this.sessions.inc({ protocol, state: 'unauthenticated' }),
      authenticated: () => {
        this.sessions.dec({ protocol, state: 'unauthenticated' });
        this.sessions.inc({ protocol, state: 'authenticated' });
      },
      closed: (wasAuthenticated, reason, seconds) => {
        this.sessions.dec({ protocol, state: wasAuthenticated ? 'authenticated' : 'unauthenticated' });
        this.sessionsClosed.inc({ protocol, reason });
        this.sessionDuration.observe({ protocol }, seconds);
      },
    };
  }

  private upstreamMetrics(protocol: Protocol): UpstreamMetrics {
    return {
      connect: (result, seconds) => this.upstreamConnectDuration.observe({ protocol, result }, seconds),
      auth: (result, seconds) => this.upstreamAuthDuration.observe({ protocol, result }, seconds),
      command: (command, result, seconds) => this.upstreamCommandDuration.observe({ protocol, command, result }, seconds),
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
      invalidation: (reason) => this.tokenInvalidations.inc({ reason }),
    };
  }

  /** The sign-in log buffer's view of these metrics (a core port). */
  audit(): AuditMetrics {
    return { dropped: () => this.auditDropped.inc() };
  }

  /** The authenticator's view of these metrics (a core port). */
  auth(): AuthMetrics {
    return {
      attempt: (protocol, reason) => this.authAttempts.inc({ protocol, result: reason === 'ok' ? 'success' : 'failure', reason }),
      credentialCache: (hit) => this.credentialCache.inc({ result: hit ? 'hit' : 'miss' }),
      rateLimitBlock: (scope) => this.rateLimitBlocks.inc({ scope }),
    };
  }

  /** The web portal's view of these metrics (a core port). */
  portal(): PortalMetrics {
    return {
      signIn: (result) => this.portalSignIns.inc({ result }),
      refused: (reason) => this.portalRefusals.inc({ reason }),
    };
  }
}
