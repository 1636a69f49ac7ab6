import { availableParallelism } from 'node:os';
import type { Config } from './config/config-schema.js';
import { AppPasswordFormat } from './core/app-password-format.js';
import { AppPasswordVerifier } from './core/app-password-verifier.js';
import type { AuditLog } from './core/audit-log.js';
import { Authenticator } from './core/authenticator.js';
import { BufferedAuditLog } from './core/buffered-audit-log.js';
import { systemClock, type Clock } from './core/clock.js';
import { CredentialSelector } from './core/credential-selector.js';
import type { CredentialStore } from './core/credential-store.js';
import { derivePepperKeys, pepperCheck } from './core/pepper-keys.js';
import { verifyPepperCheck, type PepperCheckStore } from './core/pepper-check-store.js';
import { RedisPepperCheckStore } from './credentials/redis-pepper-check-store.js';
import { SqlitePepperCheckStore } from './credentials/sqlite-pepper-check-store.js';
import type { LoginLimiter } from './core/login-limiter.js';
import type { MessageLimiter } from './core/message-limiter.js';
import { FlexibleMessageLimiter } from './rate-limit/flexible-message-limiter.js';
import { MemoryContinuousErrorMemory } from './rate-limit/memory-continuous-error-memory.js';
import { RedisContinuousErrorMemory } from './rate-limit/redis-continuous-error-memory.js';
import type { ContinuousErrorMemory } from './core/continuous-error-memory.js';
import { ContinuousErrorThrottle } from './core/continuous-error-throttle.js';
import type { PasswordHasher } from './core/password-hasher.js';
import { VerifiedCredentialCache } from './core/verified-credential-cache.js';
import { AppPasswordAdmin } from './admin/app-password-admin.js';
import { StoreTransfer } from './admin/store-transfer.js';
import { HealthAdmin } from './admin/health-admin.js';
import { LockoutAdmin } from './admin/lockout-admin.js';
import { SignInLog } from './admin/sign-in-log.js';
import type { LockoutControl } from './core/lockout-list.js';
import { Argon2PasswordHasher } from './credentials/argon2-password-hasher.js';
import { BoundedPasswordHasher } from './credentials/bounded-password-hasher.js';
import { checkRedisDurability, createRedisClient, waitForRedisReady, type RedisClient } from './redis/redis-client-factory.js';
import { RedisRevocationFeed } from './credentials/redis-revocation-feed.js';
import { LiveSessionRegistry, type RevocationHints } from './core/live-session-registry.js';
import { RedisAuditLog } from './credentials/redis-audit-log.js';
import { RedisCredentialStore } from './credentials/redis-credential-store.js';
import { SqliteAuditLog } from './credentials/sqlite-audit-log.js';
import type { MessageLog } from './core/message-log.js';
import { RedisMessageLog } from './credentials/redis-message-log.js';
import { SqliteMessageLog } from './credentials/sqlite-message-log.js';
import { openSqliteDatabase, openSqliteDatabaseReadOnly } from './credentials/sqlite-database.js';
import { SqliteCredentialStore } from './credentials/sqlite-credential-store.js';
import { SqliteWebSessionStore } from './credentials/sqlite-web-session-store.js';
import { RedisWebSessionStore } from './credentials/redis-web-session-store.js';
import type { WebSessionStore } from './core/web-session-store.js';
import { RedisTokenStateStore } from './credentials/redis-token-state-store.js';
import { SqliteTokenStateStore } from './credentials/sqlite-token-state-store.js';
import type { TokenStateStore } from './core/token-state-store.js';
import { CachedTokenProvider } from './oauth/cached-token-provider.js';
import { OAuthClient } from './oauth/oauth-client.js';
import { checkTokenAtStart } from './oauth/startup-token-check.js';
import { GrantsOnlyTokenStates } from './oauth/grants-only-token-states.js';
import { TokenCipher } from './oauth/token-cipher.js';
import type { Logger } from './observability/logger.js';
import { hostname } from 'node:os';
import { GatewayError, isGatewayError } from './core/gateway-error.js';
import { imapPipedProtocol } from './imap/imap-piped-protocol.js';
import type { ImapSession } from './imap/imap-session.js';
import type { ImapMetrics } from './core/imap-metrics.js';
import type { Pop3Metrics } from './core/pop3-metrics.js';
import { PipedGateway } from './net/piped-gateway.js';
import { pop3PipedProtocol } from './pop3/pop3-piped-protocol.js';
import type { Pop3Session } from './pop3/pop3-session.js';
import { OpsServer } from './observability/ops-server.js';
import { SmtpGateway } from './smtp/smtp-gateway.js';
import { ConnectionLimiter } from './core/connection-limiter.js';
import { NetworkList } from './core/network-list.js';
import { EXCHANGE_ONLINE_AUDIENCE, GRAPH_AUDIENCE } from './core/token-provider.js';
import type { ConnectionMetrics } from './core/connection-metrics.js';
import { PROTOCOLS, type Protocol } from './core/protocol.js';
import { ConnectionGate } from './net/connection-gate.js';
import { ImapMailboxUpstream } from './upstream/imap/upstream-imap-login.js';
import { Pop3MailboxUpstream } from './upstream/pop3/pop3-mailbox-upstream.js';
import { UpstreamConnector } from './upstream/smtp/upstream-connector.js';
import { UpstreamPool } from './upstream/smtp/upstream-pool.js';
import { GraphClient } from './upstream/graph/graph-client.js';
import { GraphMessageSender } from './upstream/graph/graph-message-sender.js';
import { GraphRequestSlots } from './upstream/graph/graph-request-slots.js';
import { GraphSubmissionUpstream } from './upstream/graph/graph-submission-upstream.js';
import { SubmissionUpstreamRouter } from './upstream/submission-upstream-router.js';
import { FlexibleRequestBudget } from './rate-limit/flexible-request-budget.js';
import type { RequestBudget } from './core/ports/request-budget.js';
import type { RequestSlots } from './core/ports/request-slots.js';
import { RedisRequestSlots } from './rate-limit/redis-request-slots.js';
import type { SubmissionUpstream } from './core/ports/submission-upstream.js';
import { transportFor, usesGraph } from './config/config-schema.js';
import { GRAPH_REPLIES } from './smtp/smtp-replies.js';
import { TlsCertificates } from './tls/tls-certificates.js';
import { Metrics } from './observability/metrics.js';
import { FlexibleLoginLimiter } from './rate-limit/flexible-login-limiter.js';
import type { SetupTarget } from './core/setup-sheet.js';
import { describeSetupCertificate } from './tls/setup-certificate.js';
import { PortalServer } from './portal/portal-server.js';

export interface App {
  config: Config;
  logger: Logger;
  clock: Clock;
  store: CredentialStore;
  audit: AuditLog;
  /** The message trace (`passgate audit --messages`), bounded like the sign-in log. */
  messageLog: MessageLog;
  hasher: PasswordHasher;
  format: AppPasswordFormat;
  verifier: AppPasswordVerifier;
  /** The use-cases the CLI and the portal share; every method takes the actor first (core/actor.ts). */
  admin: AdminServices;
  /** Portal sessions, in the store in use (SQLite, or Redis shared by every instance). */
  webSessions: WebSessionStore;
  /** This passgate's listeners and certificate as devices see them (the setup sheet), read on each call. */
  setupTarget: () => SetupTarget;
  /** `store export` / `store import`, audited, with this configuration's pepper check. */
  transfer: StoreTransfer;
  limiter: LoginLimiter;
  messages: MessageLimiter;
  /** Issue 17: the upstream's continuous refusals per submission (memory, or Redis shared by every instance). */
  continuousErrors: ContinuousErrorMemory;
  /** Issue 20: Graph requests per app and mailbox in 10 minutes (Redis shared by every instance, or memory). */
  graphRequests: RequestBudget;
  /** Issue 20: Graph requests in flight per mailbox (Redis shared by every instance, or this instance's memory). */
  graphSlots: RequestSlots;
  authenticator: Authenticator;
  /** Revocations announced by other instances and the CLI (Redis Pub/Sub); null on the embedded store. */
  revocations: RevocationHints | null;
  /** Where the portal's rate limits count: on Redis, shared by every instance; null: each instance in memory. */
  portalRateLimits: { redis: RedisClient; nameSpace: string } | null;
  /** null when OAuth is not configured (oauth.client_id). */
  oauth: { client: OAuthClient; tokens: CachedTokenProvider; /** serve's look at the grant right after start (oauth/startup-token-check.ts). */ checkAtStart: () => Promise<void> } | null;
  /** Where token state is kept (`store export`/`import` move it), and the cipher that seals its tokens. */
  tokenStates: TokenStateStore;
  tokenCipher: TokenCipher | null;
  metrics: Metrics;
  /** Closes everything it opened, once, in reverse order. Idempotent. */
  close(): Promise<void>;
}

export interface AdminServices {
  appPasswords: AppPasswordAdmin;
  signInLog: SignInLog;
  lockouts: LockoutAdmin;
  health: HealthAdmin;
}

export interface OpenAppOptions {
  logger: Logger;
  clock?: Clock;
  /** Wraps the argon2 hasher, inside the concurrency bound (tests count verifications). */
  decorateHasher?: (hasher: PasswordHasher) => PasswordHasher;
  /** Collect process metrics too (the long-running server does; CLI commands do not). */
  defaultMetrics?: boolean;
  /**
   * `passgate doctor`: the embedded store is never created, migrated or written (openSqliteDatabaseReadOnly);
   * writes fail. On Redis, token state is written only for a successful grant (GrantsOnlyTokenStates): a rotated
   * refresh token is saved, a failure is not.
   */
  readOnlyStore?: boolean;
  /**
   * Threads in libuv's pool (UV_THREADPOOL_SIZE as the process started; 4, libuv's default, when not given): the
   * entry point reads the environment, not the composition root.
   */
  threadPoolSize?: number;
}

/** The composition root: the only place that builds concrete classes. */
export async function openApp(config: Config, options: OpenAppOptions): Promise<App> {
  const { logger } = options;
  const clock = options.clock ?? systemClock;
  const closers: (() => Promise<void> | void)[] = [];
  const retentionMs = config.audit.retention_days * 86_400_000;

  const keys = derivePepperKeys(config.security.pepper);
  const argon2 = config.security.argon2;
  const baseHasher = new Argon2PasswordHasher(
    { memoryKib: argon2.memory_kib, timeCost: argon2.time_cost, parallelism: argon2.parallelism },
    keys.hashSecret,
  );
  const metrics = new Metrics({ defaultMetrics: options.defaultMetrics ?? false });
  const auth = config.auth;
  const hasher = new BoundedPasswordHasher(
    metrics.timeHasher(options.decorateHasher ? options.decorateHasher(baseHasher) : baseHasher),
    auth.hash_concurrency || defaultHashConcurrency(options.threadPoolSize ?? 4),
    auth.hash_queue_limit,
  );
  metrics.observeHashQueue(() => hasher.queueLength);
  const selector = new CredentialSelector(keys.selectorKey);
  const format = new AppPasswordFormat(config.app_passwords.length, config.app_passwords.min_length);

  let store: CredentialStore;
  let audit: AuditLog;
  let messageLog: MessageLog;
  // The sign-in log outlives a store outage in memory (bounded); closed before the store it writes to.
  const buffered = (inner: AuditLog): BufferedAuditLog => {
    const log = new BufferedAuditLog(inner, logger, metrics.audit(), { maxQueued: config.audit.outage_buffer });
    metrics.observeAuditQueue(() => log.queued);
    closers.push(() => log.close());
    return log;
  };
  let limiter: LoginLimiter & LockoutControl;
  let messages: MessageLimiter;
  let continuousErrors: ContinuousErrorMemory;
  let graphRequests: RequestBudget;
  let graphSlots: RequestSlots;
  const graph = config.smtp.upstream.graph;
  const graphBudget = { points: graph.requests_per_10_minutes, seconds: 600, name: 'graph' };
  const localGraphSlots = new GraphRequestSlots(graph.max_concurrent_requests_per_mailbox, config.smtp.upstream.wait_seconds * 1000);
  let tokenStates: TokenStateStore;
  let webSessions: WebSessionStore;
  let revocations: RedisRevocationFeed | null = null;
  let portalRateLimits: App['portalRateLimits'] = null;
  let pepperChecks: PepperCheckStore;
  let oauth: App['oauth'] = null;
  const tokenCipher = config.oauth.token_encryption_key === undefined ? null : TokenCipher.fromConfig(config.oauth.token_encryption_key);
  try {
    if (config.redisEnabled) {
      const redis: RedisClient = createRedisClient(config.redis);
      closers.push(() => void redis.disconnect());
      redis.on('error', (error: Error) => logger.warn({ err: error.message }, 'redis connection error'));
      // Serve only once connected (a Cluster refuses commands before that); a Redis still down by then is not
      // fatal: the client keeps reconnecting, and meanwhile logins are answered as temporary failures.
      if (!(await waitForRedisReady(redis, config.redis.command_timeout_ms))) logger.warn({ redis: true }, 'redis not ready yet; still connecting');
      for (const warning of await checkRedisDurability(redis)) logger.warn({ redis: true }, warning);
      store = new RedisCredentialStore(redis, config.redis.key_prefix);
      pepperChecks = new RedisPepperCheckStore(redis, config.redis.key_prefix);
      webSessions = new RedisWebSessionStore(redis, config.redis.key_prefix, clock);
      const redisAudit = buffered(new RedisAuditLog(redis, config.redis.key_prefix, retentionMs, clock, config.audit.max_entries));
      // Reconnected: write held records now, not at the end of the backoff (a hung Redis has no such event).
      redis.on('ready', () => redisAudit.retryNow());
      audit = redisAudit;
      messageLog = new RedisMessageLog(redis, config.redis.key_prefix, retentionMs, clock, config.audit.max_entries);
      const shared = new RedisTokenStateStore(redis, config.redis.key_prefix);
      tokenStates = options.readOnlyStore ? new GrantsOnlyTokenStates(shared) : shared;
      const feed = new RedisRevocationFeed(redis, config.redis.key_prefix, (error) =>
        logger.warn({ err: error.message }, 'redis revocation subscription error'),
      );
      closers.push(() => feed.close());
      revocations = feed;
      portalRateLimits = { redis, nameSpace: `${config.redis.key_prefix}portal-rl:` };
      messages = new FlexibleMessageLimiter({ redis, keyPrefix: config.redis.key_prefix }, logger);
      continuousErrors = new RedisContinuousErrorMemory(redis, config.redis.key_prefix);
      graphRequests = new FlexibleRequestBudget(graphBudget, { redis, keyPrefix: config.redis.key_prefix }, logger);
      // A lease outlives the longest request, so only a crashed instance's slot ever expires.
      const slotOptions = { limit: graph.max_concurrent_requests_per_mailbox, leaseMs: (graph.request_timeout_seconds + 30) * 1000, waitMs: config.smtp.upstream.wait_seconds * 1000 };
      graphSlots = new RedisRequestSlots(redis, config.redis.key_prefix, slotOptions, localGraphSlots, logger);
      limiter = new FlexibleLoginLimiter(config.rate_limit, { redis, keyPrefix: config.redis.key_prefix }, (error) =>
        logger.error({ code: error.code, cause: error.message }, 'rate limit rule unavailable'),
      );
    } else {
      const db = options.readOnlyStore ? openSqliteDatabaseReadOnly(config.sqlite.path) : openSqliteDatabase(config.sqlite.path);
      closers.push(() => void db.close());
      store = new SqliteCredentialStore(db);
      pepperChecks = new SqlitePepperCheckStore(db);
      webSessions = new SqliteWebSessionStore(db, clock);
      audit = buffered(new SqliteAuditLog(db, retentionMs, clock, config.audit.max_entries));
      messageLog = new SqliteMessageLog(db, retentionMs, clock, config.audit.max_entries);
      tokenStates = new SqliteTokenStateStore(db);
      messages = new FlexibleMessageLimiter(null, logger);
      continuousErrors = new MemoryContinuousErrorMemory(clock);
      graphRequests = new FlexibleRequestBudget(graphBudget, null, logger);
      graphSlots = localGraphSlots;
      limiter = new FlexibleLoginLimiter(config.rate_limit, null);
    }
    // Security (issue 17): a store written with another pepper stops serve, the CLI and doctor here.
    await checkPepper(pepperChecks, pepperCheck(keys), store, config, logger, !options.readOnlyStore);
    if (config.oauth.client_id !== null) {
      const opened = await openOAuth(config, { tokenStates, cipher: tokenCipher, audit, metrics, logger, clock });
      closers.push(() => opened.tokens.close());
      metrics.observeTokens(() => opened.tokens.status());
      oauth = opened;
    }
  } catch (error) {
    for (const close of closers.reverse()) await close();
    throw error;
  }

  closers.push(() => limiter.close());
  const cache = new VerifiedCredentialCache(auth.cache_ttl_seconds * 1000, auth.cache_max_entries, clock);
  const verifier = new AppPasswordVerifier({ store, hasher, selector, format, clock, cache });
  const setupTarget = (): SetupTarget => setupTargetOf(config);
  const admin: AdminServices = {
    appPasswords: new AppPasswordAdmin({ store, audit, hasher, selector, format, clock, maxPerUser: config.app_passwords.max_per_user, log: logger, setupTarget }),
    signInLog: new SignInLog(audit, clock),
    lockouts: new LockoutAdmin({ limiter, audit, clock, log: logger }),
    health: new HealthAdmin({
      tokens: oauth?.tokens ?? null,
      audit,
      clock,
      upstreams: [
        { protocol: 'smtp', enabled: config.smtp.enabled, host: config.smtp.upstream.host, port: config.smtp.upstream.port, tls: config.smtp.upstream.tls },
        { protocol: 'imap', enabled: config.imap.enabled, host: config.imap.upstream.host, port: config.imap.upstream.port, tls: config.imap.upstream.tls },
        { protocol: 'pop3', enabled: config.pop3.enabled, host: config.pop3.upstream.host, port: config.pop3.upstream.port, tls: config.pop3.upstream.tls },
      ],
    }),
  };
  const transfer = new StoreTransfer({ store, tokenStates, cipher: tokenCipher, audit, clock, log: logger, pepperCheck: pepperCheck(keys) });

  const authenticator = new Authenticator(
    {
      verifier,
      limiter,
      audit,
      metrics: metrics.auth(),
      log: logger,
      clock,
      fingerprintKey: keys.fingerprintKey,
      recordUse: (record, ip, protocol) => store.recordUse(record.id, { at: clock(), ip, protocol }),
    },
    {
      trustedNetworks: config.rate_limit.trusted_networks,
      parallelPerIp: auth.parallel_per_ip,
      failureDelayMs: auth.failure_delay_ms,
      failureDelayJitterMs: auth.failure_delay_jitter_ms,
    },
  );

  let closing: Promise<void> | undefined;
  return {
    config,
    logger,
    clock,
    store,
    audit,
    messageLog,
    hasher,
    format,
    verifier,
    admin,
    webSessions,
    setupTarget,
    transfer,
    limiter,
    messages,
    continuousErrors,
    graphRequests,
    graphSlots,
    authenticator,
    metrics,
    revocations,
    portalRateLimits,
    tokenStates,
    tokenCipher,
    oauth,
    close() {
      closing ??= (async () => {
        for (const close of closers.reverse()) await close();
      })();
      return closing;
    },
  };
}

/** The listeners of the enabled protocols and the certificate devices will see, for the setup sheet. */
function setupTargetOf(config: Config): SetupTarget {
  const host = config.app_passwords.setup_host ?? config.smtp.hostname ?? hostname();
  const listeners = (section: Config['smtp'] | Config['imap'] | Config['pop3']) =>
    section.enabled ? section.listeners.map((l) => ({ name: l.name, port: l.port, tls: l.tls, plaintextFrom: l.plaintext_auth_from })) : null;
  return {
    host,
    listeners: { smtp: listeners(config.smtp), imap: listeners(config.imap), pop3: listeners(config.pop3) },
    certificate: describeSetupCertificate(config.tls.certificates, host),
  };
}

/**
 * Security (issue 17): the store's pepper check against this configuration's pepper; a mismatch throws (serve, the
 * CLI and doctor stop, naming security.pepper). A store without one adopts the current pepper, and says so when it
 * already holds app passwords (written by an older passgate: if they stop verifying, the pepper changed before).
 * A store that cannot be read now (Redis still connecting) skips the check with a warning: availability first.
 */
async function checkPepper(checks: PepperCheckStore, check: string, store: CredentialStore, config: Config, logger: Logger, record: boolean): Promise<void> {
  let outcome;
  try {
    outcome = await verifyPepperCheck(checks, check, { record, dataDir: config.data_dir });
  } catch (error) {
    if (isGatewayError(error, 'PG_CONFIG_INVALID')) throw error;
    logger.warn({ cause: (error as Error).message }, 'pepper check skipped: store unavailable');
    return;
  }
  if (outcome === 'recorded' && (await store.list({}).catch(() => [])).length > 0) {
    logger.warn({ store: config.redisEnabled ? 'redis' : 'sqlite' }, 'pepper check recorded: the existing store adopted the current pepper');
  }
}

/**
 * A cached token the upstream refuses is dropped and fetched again at most once per key in this window (per
 * instance): enough to recover from an early revocation at once, too rare for a permanently refusing upstream to
 * turn every client login into a token request.
 */
const FORCED_REFRESH_INTERVAL_MS = 30_000;

async function openOAuth(
  config: Config,
  deps: { tokenStates: TokenStateStore; cipher: TokenCipher | null; audit: AuditLog; metrics: Metrics; logger: Logger; clock: Clock },
): Promise<{ client: OAuthClient; tokens: CachedTokenProvider; checkAtStart: () => Promise<void> }> {
  const o = config.oauth;
  const client = await OAuthClient.create(o, config.data_dir);
  const { cipher } = deps;
  const timeoutMs = o.request_timeout_seconds * 1000;
  const tokens = new CachedTokenProvider(
    { source: client, store: deps.tokenStates, cipher, audit: deps.audit, metrics: deps.metrics.tokens(), log: deps.logger, clock: deps.clock },
    {
      mode: o.mode,
      marginMs: o.refresh_margin_seconds * 1000,
      retryBaseMs: o.retry_base_seconds * 1000,
      retryMaxMs: o.retry_max_seconds * 1000,
      lockTtlMs: 2 * timeoutMs + 1000,
      peerWaitMs: timeoutMs + 1000,
      forcedRefreshIntervalMs: FORCED_REFRESH_INTERVAL_MS,
      // Issue 20: in delegated mode `oauth connect` also stores the mailbox's grant for Graph when Graph carries mail.
      connectAudiences: usesGraph(config.smtp.upstream) ? [GRAPH_AUDIENCE] : [],
    },
  );
  const checkAtStart = () => checkTokenAtStart(tokens, o.mode, deps.logger, client.tokenEndpoint.href);
  return { client, tokens, checkAtStart };
}

/**
 * argon2 runs on libuv's thread pool (UV_THREADPOOL_SIZE, 4 by default), shared with file and DNS work: leave two
 * threads free, and never run more at once than there are cores. The pool's size is a property of the process, not
 * of passgate's configuration: the entry point passes it (OpenAppOptions.threadPoolSize).
 */
function defaultHashConcurrency(pool: number): number {
  return Math.max(1, Math.min(availableParallelism(), pool - 2));
}

export interface Services {
  tls: TlsCertificates;
  smtp: SmtpGateway | null;
  imap: PipedGateway<ImapSession, ImapMetrics> | null;
  pop3: PipedGateway<Pop3Session, Pop3Metrics> | null;
  ops: OpsServer | null;
  /** The web portal (portal.enabled), or null. */
  portal: PortalServer | null;
  /** Ends SMTP, IMAP and POP3 sessions of revoked, expired or turned-off app passwords. */
  registry: LiveSessionRegistry;
  /**
   * Graceful shutdown, idempotent: /readyz turns 503 and every listener stops accepting at once; idle SMTP
   * connections get 421 and IMAP sessions `* BYE` at once; SMTP transactions in flight may finish for up to
   * `graceMs` (then 421); the ops port closes last.
   */
  close(graceMs?: number): Promise<void>;
}

/** Starts what `passgate serve` runs on top of the app: TLS certificates, the SMTP and the IMAP listeners. */
export async function startServices(app: App): Promise<Services> {
  const { config, logger } = app;
  const tls = await TlsCertificates.open(config.tls, config.data_dir, logger);
  if (config.tls.watch) tls.watch();
  app.metrics.observeCertificates(() => tls.expiries());
  let smtp: SmtpGateway | null = null;
  let imap: Services['imap'] = null;
  let pop3: Services['pop3'] = null;
  let ops: OpsServer | null = null;
  let portal: PortalServer | null = null;
  // One registry for SMTP and IMAP sessions: revoke, revoke-all and expiry end both within revocation_check_seconds.
  const registry = new LiveSessionRegistry(app.store, Date.now, logger, config.imap.revocation_check_seconds * 1000);
  try {
    if ((config.smtp.enabled || config.imap.enabled || config.pop3.enabled) && !app.oauth) {
      throw new GatewayError('PG_CONFIG_INVALID', 'oauth.client_id: required to log in upstream (smtp.enabled, imap.enabled or pop3.enabled is true)');
    }
    const gate = (protocol: Protocol, caps: { max_connections: number; max_connections_per_ip: number }, metrics: ConnectionMetrics) =>
      new ConnectionGate(
        protocol,
        new ConnectionLimiter({ maxTotal: caps.max_connections, maxPerIp: caps.max_connections_per_ip, exempt: new NetworkList(config.rate_limit.trusted_networks) }),
        { metrics, log: logger, clock: Date.now },
      );
    if (config.smtp.enabled) {
      const metrics = app.metrics.smtp();
      const name = config.smtp.hostname ?? hostname();
      const u = config.smtp.upstream;
      // The submission upstream: the SMTP relay, sessions pooled per mailbox (Exchange Online allows 3 at once).
      const connector = new UpstreamConnector(u, app.oauth!.tokens, name, metrics.upstream, EXCHANGE_ONLINE_AUDIENCE);
      const pool = new UpstreamPool(
        (mailbox) => connector.open(mailbox),
        { maxPerMailbox: u.max_connections_per_mailbox, waitMs: u.wait_seconds * 1000, idleMs: u.idle_seconds * 1000, onWaitTimeout: () => metrics.poolWaitTimedOut() },
        logger,
      );
      // Issue 20: Graph sendMail for the mailboxes whose transport is graph (smtp.upstream.transport, per domain).
      const transports: Record<string, SubmissionUpstream> = { smtp: pool };
      if (usesGraph(u)) {
        const slots = app.graphSlots;
        const sender = new GraphMessageSender({
          client: new GraphClient(u.graph.base_url, u.graph.request_timeout_seconds * 1000),
          tokens: app.oauth!.tokens,
          slots,
          budget: app.graphRequests,
          replies: GRAPH_REPLIES,
          log: logger,
          appId: config.oauth.client_id ?? 'app',
        });
        transports.graph = new GraphSubmissionUpstream(app.oauth!.tokens, sender, slots);
      }
      const upstream = new SubmissionUpstreamRouter(transports, (mailbox) => transportFor(u, mailbox), app.metrics.transport());
      smtp = new SmtpGateway(config.smtp, {
        authenticator: app.authenticator,
        upstream,
        messages: app.messages,
        store: app.store,
        tls,
        metrics,
        log: logger,
        hostname: name,
        maxFailuresPerConnection: config.auth.max_failures_per_connection,
        gate: gate('smtp', config.smtp, app.metrics.connections()),
        messageLog: app.messageLog,
        registry,
        continuousErrors: new ContinuousErrorThrottle(
          app.continuousErrors,
          { threshold: config.smtp.continuous_errors.threshold, coolDownMs: config.smtp.continuous_errors.cool_down_seconds * 1000 },
          logger,
        ),
      });
      app.metrics.observeUpstreamPool(() => smtp!.upstream.stats());
      await smtp.start();
    }
    // The piped protocols: the same listener and gateway, each with its session, words and mailbox upstream.
    const common = { authenticator: app.authenticator, tls, log: logger, maxFailuresPerConnection: config.auth.max_failures_per_connection, registry };
    if (config.imap.enabled) {
      const metrics = app.metrics.imap();
      const upstream = new ImapMailboxUpstream(config.imap.upstream, app.oauth!.tokens, metrics.upstream, EXCHANGE_ONLINE_AUDIENCE);
      imap = new PipedGateway(config.imap, { ...common, upstream, metrics, gate: gate('imap', config.imap, app.metrics.connections()) }, imapPipedProtocol);
      await imap.start();
    }
    if (config.pop3.enabled) {
      const metrics = app.metrics.pop3();
      const upstream = new Pop3MailboxUpstream(config.pop3.upstream, app.oauth!.tokens, metrics.upstream, EXCHANGE_ONLINE_AUDIENCE);
      pop3 = new PipedGateway(config.pop3, { ...common, upstream, metrics, gate: gate('pop3', config.pop3, app.metrics.connections()) }, pop3PipedProtocol);
      await pop3.start();
    }
    registry.start();
    // With Redis, a revocation anywhere closes this instance's sessions at once; the registry's polling stays.
    if (app.revocations) registry.listen(app.revocations);
    if (config.ops.enabled) {
      ops = new OpsServer(config.ops, { metrics: app.metrics, store: app.store, tokens: app.oauth?.tokens ?? null, log: logger });
      await ops.listen();
    }
    if (config.portal.enabled) {
      // Every protocol is offered, whatever this instance serves: a portal-only instance makes passwords for the
      // mail instances (the setup sheet says which protocols are not served, from this instance's config).
      portal = new PortalServer(config.portal, {
        admin: app.admin,
        protocols: PROTOCOLS,
        sessions: app.webSessions,
        rateLimits: app.portalRateLimits,
        tls: config.portal.tls === 'listener' ? tls : null,
        log: logger,
        metrics: app.metrics.portal(),
        clock: app.clock,
      });
      await portal.listen();
    }
  } catch (error) {
    registry.stop();
    await smtp?.close(0);
    await imap?.close();
    await pop3?.close();
    await ops?.close();
    await portal?.close();
    tls.close();
    throw error;
  }
  let closing: Promise<void> | undefined;
  return {
    tls,
    smtp,
    imap,
    pop3,
    ops,
    portal,
    registry,
    close(graceMs = 10_000) {
      closing ??= (async () => {
        ops?.drain(); // /readyz answers 503 from now on, so a balancer stops sending new clients
        registry.stop();
        await Promise.all([smtp?.close(graceMs), imap?.close(), pop3?.close(), portal?.close()]);
        await ops?.close();
        tls.close();
      })();
      return closing;
    },
  };
}
