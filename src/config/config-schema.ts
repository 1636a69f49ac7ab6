import { z } from 'zod';
import { parseCidr } from '../core/network-list.js';

/**
 * The one configuration schema. Every key has a default and a one-line description; unknown keys are
 * errors (`.strict()`), so a typo stops the start instead of being ignored. config/passgate.example.yaml
 * documents every key, and a test holds the two together.
 *
 * Secrets (SECRET_KEYS) may instead be given as `<key>_file` (a path whose content is the secret) or through
 * the environment (`PASSGATE_SECURITY__PEPPER`); the loader resolves them before this schema runs.
 */
export const SECRET_KEYS = ['security.pepper', 'redis.password', 'redis.sentinel_password', 'oauth.client_secret', 'oauth.token_encryption_key', 'portal.oidc.client_secret'] as const;

const positiveInt = () => z.number().int().positive();
/** A section whose defaults are its keys' defaults. */
const section = <T extends z.ZodType>(schema: T) => schema.default(() => schema.parse({}) as never);

const argon2Schema = z
  .object({
    memory_kib: positiveInt().min(1024).default(19456).describe('argon2id memory cost in KiB (OWASP: 19456)'),
    time_cost: positiveInt().default(2).describe('argon2id iterations (OWASP: 2)'),
    parallelism: positiveInt().max(16).default(1).describe('argon2id lanes (OWASP: 1)'),
  })
  .strict();

const securitySchema = z
  .object({
    pepper: z
      .string()
      .min(16, 'must be at least 16 characters')
      .optional()
      .describe('server-side secret mixed into every hash; without Redis it is generated into data_dir/pepper'),
    argon2: argon2Schema.default(() => argon2Schema.parse({})),
  })
  .strict();

const appPasswordsSchema = z
  .object({
    length: z.number().int().min(8).max(64).default(16).describe('letters in a newly generated app password'),
    min_length: z.number().int().min(8).max(64).default(12).describe('fewest letters accepted, at creation and at login'),
    max_per_user: positiveInt().max(1000).default(10).describe('active app passwords one user may hold'),
    setup_host: z.string().min(1).nullable().default(null).describe('host name devices connect to, on the setup sheet; null: smtp.hostname, else the machine\'s'),
  })
  .strict()
  .refine((v) => v.length >= v.min_length, { message: 'must be at least min_length', path: ['length'] });

const cidrList = () =>
  z.array(z.string().refine((v) => parseCidr(v) !== null, { message: 'expected an address or CIDR such as 192.168.1.0/24' }));

const sentinelSchema = z.object({ host: z.string().min(1), port: z.number().int().min(1).max(65535) }).strict();

const redisSchema = z
  .object({
    url: z.string().url().nullable().default(null).describe('redis://[user@]host:port/db or rediss:// (TLS); null: no Redis'),
    username: z.string().min(1).nullable().default(null).describe('Redis ACL user (Redis 6+), every topology; overrides one in the URL; null: the URL\'s, else default'),
    password: z.string().optional().describe('Redis password (or password_file), every topology; overrides one in the URL'),
    tls: z.boolean().default(false).describe('TLS to every Redis node: url (as rediss://), cluster_nodes, and with sentinels both the sentinels and the master'),
    ca_file: z.string().nullable().default(null).describe('CA bundle trusted for Redis TLS in addition to the public roots (private or managed CAs); null: the public roots only'),
    servername: z.string().nullable().default(null).describe('name every Redis certificate must carry; null: the host connected to'),
    sentinels: z.array(sentinelSchema).default([]).describe('Sentinel nodes; with sentinel_name, used instead of url'),
    sentinel_name: z.string().default('mymaster').describe('the Sentinel master group name'),
    sentinel_username: z.string().min(1).nullable().default(null).describe('ACL user on the sentinels themselves; null: none'),
    sentinel_password: z.string().optional().describe('password of the sentinels themselves (or sentinel_password_file); unset: none'),
    cluster_nodes: z
      .array(z.string().regex(/^(\[[0-9a-fA-F:.]+\]|[^\s:[\]]+):\d{1,5}$/, 'expected host:port, such as 10.0.0.5:6379 or [fd00::5]:6379'))
      .default([])
      .describe('Redis Cluster seed nodes as host:port (a few masters suffice); used instead of url and sentinels'),
    key_prefix: z.string().default('passgate:').describe('prefix of every key passgate writes'),
    command_timeout_ms: positiveInt().default(2000).describe('a Redis command slower than this fails as unavailable'),
  })
  .strict()
  .refine((r) => [r.url !== null, r.sentinels.length > 0, r.cluster_nodes.length > 0].filter(Boolean).length <= 1, {
    message: 'set one of url, sentinels or cluster_nodes, not several',
  })
  .superRefine((r, ctx) => {
    const tls = redisUsesTls(r);
    for (const key of ['ca_file', 'servername'] as const) {
      if (r[key] !== null && !tls) ctx.addIssue({ code: 'custom', path: [key], message: 'only with TLS: set redis.tls: true (or use a rediss:// url)' });
    }
    if (r.sentinels.length === 0) {
      if (r.sentinel_username !== null) ctx.addIssue({ code: 'custom', path: ['sentinel_username'], message: 'only with sentinels' });
      if (r.sentinel_password !== undefined) ctx.addIssue({ code: 'custom', path: ['sentinel_password'], message: 'only with sentinels' });
    }
  });

const sqliteSchema = z
  .object({
    path: z.string().min(1).default('passgate.db').describe('embedded store file, relative to data_dir'),
  })
  .strict();

const auditSchema = z
  .object({
    retention_days: positiveInt().max(3650).default(30).describe('sign-in log entries older than this are deleted'),
    max_entries: positiveInt().default(1_000_000).describe('the sign-in log keeps at most about this many entries, oldest dropped first'),
    outage_buffer: z
      .number()
      .int()
      .min(0)
      .max(1_000_000)
      .default(10_000)
      .describe('while the store cannot be written, up to this many sign-in records wait in memory (oldest dropped past it); 0: none'),
  })
  .strict();

const authSchema = z
  .object({
    failure_delay_ms: z.number().int().min(0).max(30000).default(1000).describe('a listener waits this long before answering a failed login'),
    failure_delay_jitter_ms: z.number().int().min(0).max(30000).default(500).describe('plus a random delay up to this'),
    max_failures_per_connection: positiveInt().max(100).default(3).describe('failed logins after which a listener disconnects'),
    cache_ttl_seconds: z.number().int().min(0).max(3600).default(300).describe('a verified (user, password) skips argon2 this long; 0: off'),
    cache_max_entries: z.number().int().min(0).default(10000).describe('most credential-cache entries held in memory'),
    hash_concurrency: z.number().int().min(0).max(64).default(0).describe('argon2 operations at once; 0: one per CPU core'),
    hash_queue_limit: z.number().int().min(0).default(200).describe('argon2 operations waiting beyond that; more are refused as temporary'),
    parallel_per_ip: positiveInt().max(64).default(4).describe('logins verified at once from one address (IPv6: one /64); more wait their turn'),
  })
  .strict();

const TENANT = /^(?:[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}|(?=.{1,253}$)(?:[a-z0-9](?:[a-z0-9-]{0,61}[a-z0-9])?\.)+[a-z](?:[a-z0-9-]{0,61}[a-z0-9])?)$/i;

const oauthSchema = z
  .object({
    provider: z.enum(['microsoft', 'generic']).default('microsoft').describe('microsoft (Entra ID) or any OAuth 2.0 provider'),
    mode: z.enum(['app', 'delegated']).default('app').describe('app: one client-credentials token for every mailbox; delegated: a refresh token per mailbox'),
    client_id: z.string().min(1).nullable().default(null).describe('the application (client) id; null: OAuth not configured'),
    client_secret: z.string().min(1).optional().describe('client secret (or client_secret_file); or use certificate_file + private_key_file'),
    certificate_file: z.string().nullable().default(null).describe('PEM certificate registered on the app (Entra certificate credential)'),
    private_key_file: z.string().nullable().default(null).describe('PEM private key of certificate_file'),
    tenant: z
      .string()
      // Entra ID names a tenant by its id (a GUID) or one of its verified domains; anything else is a typo or a
      // pasted URL, which would only fail later, at the first token request.
      .regex(TENANT, 'must be the tenant id (a GUID such as 00000000-0000-0000-0000-000000000000) or a domain such as contoso.onmicrosoft.com')
      .nullable()
      .default(null)
      .describe('microsoft: the tenant id or primary domain'),
    authority_host: z.string().url().default('https://login.microsoftonline.com').describe('microsoft: the login host (national clouds differ)'),
    token_endpoint: z.string().url().nullable().default(null).describe('generic: the token endpoint (microsoft: derived from tenant)'),
    device_authorization_endpoint: z.string().url().nullable().default(null).describe('generic: the device authorization endpoint'),
    scopes: z.array(z.string().min(1)).nullable().default(null).describe('requested scopes; null: the provider and mode defaults'),
    refresh_margin_seconds: z.number().int().min(0).max(3000).default(600).describe('a token is used only until this long before it expires'),
    request_timeout_seconds: positiveInt().max(120).default(10).describe('a token request slower than this fails as temporary'),
    retry_base_seconds: positiveInt().default(2).describe('first wait after a temporary failure; doubles, with jitter'),
    retry_max_seconds: positiveInt().default(300).describe('longest wait between attempts after temporary failures'),
    token_encryption_key: z.string().optional().describe('32 random bytes (base64 or hex) sealing stored tokens, AES-256-GCM'),
  })
  .strict();

const tlsVersion = z.enum(['TLSv1', 'TLSv1.1', 'TLSv1.2', 'TLSv1.3']);

const tlsSchema = z
  .object({
    certificates: z
      .array(z.object({ cert_file: z.string().min(1), key_file: z.string().min(1) }).strict())
      .default([])
      .describe('PEM certificate + key pairs; the first is the default, the others are chosen by SNI; []: self-signed'),
    watch: z.boolean().default(true).describe('reload the certificates when their files change (SIGHUP always reloads)'),
  })
  .strict();

const listenerSchema = z
  .object({
    name: z.string().min(1).describe('a label for logs and metrics'),
    host: z.string().default('::').describe('address to listen on (:: is every IPv6 and IPv4 address)'),
    port: z.number().int().min(0).max(65535).describe('TCP port (0: any free port, for tests)'),
    tls: z.enum(['starttls', 'implicit', 'none']).describe('starttls (587/143), implicit (465/993), or none (LAN devices only)'),
    min_tls_version: tlsVersion.default('TLSv1.2').describe('oldest TLS accepted; TLSv1/TLSv1.1 only for devices that need it'),
    plaintext_auth_from: cidrList().default([]).describe('networks allowed to log in without TLS (tls: none listeners only)'),
    proxy_protocol_from: cidrList().default([]).describe('load balancers whose PROXY v1/v2 header names the client'),
  })
  .strict()
  .refine((l) => l.tls !== 'none' || l.plaintext_auth_from.length > 0, {
    message: 'a tls: none listener needs plaintext_auth_from (the networks whose devices may log in without TLS)',
    path: ['plaintext_auth_from'],
  })
  .refine((l) => l.tls === 'none' || l.plaintext_auth_from.length === 0, {
    message: 'only a tls: none listener accepts logins without TLS',
    path: ['plaintext_auth_from'],
  });

/** The submission transports: SMTP AUTH relay, or Microsoft Graph sendMail (issue 20, docs/graph.md). */
export const SUBMISSION_TRANSPORTS = ['smtp', 'graph'] as const;
export type SubmissionTransport = (typeof SUBMISSION_TRANSPORTS)[number];

const LOOPBACK_HOSTS = new Set(['127.0.0.1', 'localhost', '[::1]']);

const graphSchema = z
  .object({
    base_url: z
      .string()
      .url()
      .default('https://graph.microsoft.com/v1.0')
      .refine((url) => url.startsWith('https://') || (url.startsWith('http://') && LOOPBACK_HOSTS.has(new URL(url).hostname)), {
        message: 'https:// (plain http:// only on loopback, for a local stand-in)',
      })
      .describe('Microsoft Graph endpoint with its version (national clouds have their own); plain http only on loopback'),
    request_timeout_seconds: positiveInt().default(120).describe('one Graph request, from sending it to its answer (an upload chunk, a sendMail)'),
    max_concurrent_requests_per_mailbox: positiveInt().max(4).default(4).describe('Graph requests in flight per mailbox, over every instance when Redis is configured (Graph allows 4)'),
    requests_per_10_minutes: positiveInt().default(10_000).describe('Graph requests per app and mailbox in 10 minutes, over every instance when Redis is configured (Graph allows 10,000)'),
  })
  .strict();

const smtpUpstreamSchema = z
  .object({
    transport: z.enum(SUBMISSION_TRANSPORTS).default('smtp').describe('how submissions leave passgate: smtp (SMTP AUTH XOAUTH2 relay) or graph (Microsoft Graph sendMail)'),
    transport_by_domain: z
      .record(z.string().min(1), z.enum(SUBMISSION_TRANSPORTS))
      .default({})
      .describe('the transport for mailboxes of a domain, overriding transport (e.g. {"example.org": graph})'),
    graph: graphSchema.default(() => graphSchema.parse({})).describe('the Graph transport (docs/graph.md)'),
    host: z.string().min(1).default('smtp.office365.com').describe('the provider\'s SMTP submission host'),
    port: z.number().int().min(1).max(65535).default(587).describe('its port'),
    tls: z.enum(['starttls', 'implicit']).default('starttls').describe('how passgate reaches it: STARTTLS on 587, implicit TLS on 465'),
    ca_file: z.string().nullable().default(null).describe('CA bundle trusted in addition to the public roots (private upstreams, TLS-inspecting proxies); null: the public roots only'),
    servername: z.string().nullable().default(null).describe('name the upstream certificate must carry; null: host'),
    connect_timeout_seconds: positiveInt().default(15).describe('connecting, TLS and login upstream'),
    command_timeout_seconds: positiveInt().default(60).describe('an upstream reply to a command (MAIL, RCPT, DATA)'),
    data_timeout_seconds: positiveInt().default(600).describe('the upstream reply after the message (RFC 5321: 10 minutes)'),
    max_connections_per_mailbox: positiveInt().max(100).default(3).describe('upstream sessions per mailbox (Exchange Online allows 3)'),
    wait_seconds: z.number().int().min(0).default(30).describe('how long a client waits for a free upstream session before 451'),
    idle_seconds: z.number().int().min(0).default(60).describe('an idle pooled upstream session is closed after this'),
  })
  .strict();

const continuousErrorsSchema = z
  .object({
    threshold: positiveInt()
      .default(3)
      .describe('upstream refusals with 5.2.251-5.2.255 of one (mailbox, sender, recipient) within the cool-down that make passgate refuse it locally'),
    cool_down_seconds: z
      .number()
      .int()
      .min(0)
      .default(900)
      .describe('how long passgate then refuses that submission itself (and the window the refusals are counted in); 0 turns this off'),
  })
  .strict();

const smtpSchema = z
  .object({
    enabled: z.boolean().default(true).describe('serve SMTP submission'),
    hostname: z.string().nullable().default(null).describe('the name in the greeting and EHLO; null: the machine\'s host name'),
    listeners: z
      .array(listenerSchema)
      .default([
        { name: 'submission', host: '::', port: 587, tls: 'starttls', min_tls_version: 'TLSv1.2', plaintext_auth_from: [], proxy_protocol_from: [] },
        { name: 'submissions', host: '::', port: 465, tls: 'implicit', min_tls_version: 'TLSv1.2', plaintext_auth_from: [], proxy_protocol_from: [] },
      ])
      .describe('where legacy clients connect'),
    max_message_bytes: positiveInt().default(157_286_400).describe('largest message accepted (Exchange Online: 150 MiB)'),
    max_recipients: positiveInt().default(500).describe('recipients per message'),
    check_from_header: z
      .boolean()
      .nullable()
      .default(null)
      .describe(
        'refuse a message whose From header is neither the mailbox nor an allowed sender (550 5.7.1); an app password may say otherwise (--check-from-header); null: on when any mailbox goes through Graph (it sends as the header From), off otherwise',
      ),
    max_connections: positiveInt().default(500).describe('SMTP connections open at once, every listener and client together; more get 421'),
    max_connections_per_ip: positiveInt().default(20).describe('SMTP connections open at once from one address (IPv6: one /64); trusted_networks exempt'),
    login_timeout_seconds: positiveInt().default(60).describe('a connection not logged in this long after connecting (PROXY header and TLS included) gets 421'),
    upstream: smtpUpstreamSchema.default(() => smtpUpstreamSchema.parse({})),
    continuous_errors: continuousErrorsSchema
      .default(() => continuousErrorsSchema.parse({}))
      .describe("Exchange Online's continuous-error throttling: hold back a submission the upstream keeps refusing (docs/troubleshooting.md)"),
  })
  .strict();

const imapUpstreamSchema = z
  .object({
    host: z.string().min(1).default('outlook.office365.com').describe('the provider\'s IMAP host'),
    port: z.number().int().min(1).max(65535).default(993).describe('its port'),
    tls: z.enum(['implicit', 'starttls']).default('implicit').describe('implicit TLS (993) or STARTTLS (143)'),
    ca_file: z.string().nullable().default(null).describe('CA bundle trusted in addition to the public roots; null: the public roots only'),
    servername: z.string().nullable().default(null).describe('name the upstream certificate must carry; null: host'),
    connect_timeout_seconds: positiveInt().default(15).describe('connecting, TLS and AUTHENTICATE XOAUTH2 upstream'),
  })
  .strict();

const imapSchema = z
  .object({
    enabled: z.boolean().default(true).describe('serve IMAP'),
    listeners: z
      .array(listenerSchema)
      .default([
        { name: 'imap', host: '::', port: 143, tls: 'starttls', min_tls_version: 'TLSv1.2', plaintext_auth_from: [], proxy_protocol_from: [] },
        { name: 'imaps', host: '::', port: 993, tls: 'implicit', min_tls_version: 'TLSv1.2', plaintext_auth_from: [], proxy_protocol_from: [] },
      ])
      .describe('where legacy clients connect'),
    login_timeout_seconds: positiveInt().default(60).describe('a connection not logged in this long after connecting (PROXY header and TLS included) is closed'),
    max_connections: positiveInt().default(1000).describe('IMAP connections open at once, every listener and client together; more get * BYE'),
    max_connections_per_ip: positiveInt().default(50).describe('IMAP connections open at once from one address (IPv6: one /64); trusted_networks exempt'),
    max_commands_before_login: positiveInt().default(25).describe('commands a client may send before logging in'),
    idle_timeout_minutes: z.number().int().min(30).default(35).describe('a logged-in connection silent both ways this long is closed (IDLE needs >= 30)'),
    revocation_check_seconds: positiveInt().max(60).default(2).describe('how often live SMTP, IMAP and POP3 sessions are checked against revocations and expiry'),
    upstream: imapUpstreamSchema.default(() => imapUpstreamSchema.parse({})),
  })
  .strict();

const pop3UpstreamSchema = z
  .object({
    host: z.string().min(1).default('outlook.office365.com').describe('the provider\'s POP3 host'),
    port: z.number().int().min(1).max(65535).default(995).describe('its port'),
    tls: z.enum(['implicit', 'starttls']).default('implicit').describe('implicit TLS (995) or STLS (110, RFC 2595)'),
    ca_file: z.string().nullable().default(null).describe('CA bundle trusted in addition to the public roots; null: the public roots only'),
    servername: z.string().nullable().default(null).describe('name the upstream certificate must carry; null: host'),
    connect_timeout_seconds: positiveInt().default(15).describe('connecting, TLS and AUTH XOAUTH2 upstream'),
  })
  .strict();

const pop3Schema = z
  .object({
    enabled: z.boolean().default(false).describe('serve POP3 (off by default: turn it on where devices fetch mail over POP3)'),
    listeners: z
      .array(listenerSchema)
      .default([
        { name: 'pop3', host: '::', port: 110, tls: 'starttls', min_tls_version: 'TLSv1.2', plaintext_auth_from: [], proxy_protocol_from: [] },
        { name: 'pop3s', host: '::', port: 995, tls: 'implicit', min_tls_version: 'TLSv1.2', plaintext_auth_from: [], proxy_protocol_from: [] },
      ])
      .describe('where legacy clients connect (tls: starttls means STLS on POP3)'),
    login_timeout_seconds: positiveInt().default(60).describe('a connection not logged in this long after connecting (PROXY header and TLS included) is closed'),
    max_connections: positiveInt().default(1000).describe('POP3 connections open at once, every listener and client together; more get -ERR [SYS/TEMP]'),
    max_connections_per_ip: positiveInt().default(50).describe('POP3 connections open at once from one address (IPv6: one /64); trusted_networks exempt'),
    max_commands_before_login: positiveInt().default(25).describe('commands a client may send before logging in'),
    idle_timeout_minutes: z.number().int().min(10).default(10).describe('a logged-in connection silent both ways this long is closed (RFC 1939: at least 10)'),
    upstream: pop3UpstreamSchema.default(() => pop3UpstreamSchema.parse({})),
  })
  .strict();

const opsSchema = z
  .object({
    enabled: z.boolean().default(true).describe('serve /metrics, /healthz and /readyz over HTTP'),
    host: z.string().default('127.0.0.1').describe('address of the ops port; keep it off the internet'),
    port: z.number().int().min(0).max(65535).default(9465).describe('the ops port'),
  })
  .strict();

const portalOidcSchema = z
  .object({
    issuer: z.string().url().nullable().default(null).describe('the OpenID provider; null: Entra ID of oauth.tenant (https://login.microsoftonline.com/<tenant>/v2.0)'),
    client_id: z.string().min(1).nullable().default(null).describe('the portal\'s own client registration at the provider (required when portal.enabled)'),
    client_secret: z.string().min(1).optional().describe('its client secret (or client_secret_file; PASSGATE_PORTAL__OIDC__CLIENT_SECRET)'),
    allowed_domains: z
      .array(z.string().regex(/^[a-z0-9.-]+\.[a-z]{2,}$/i, 'expected a mail domain such as example.com'))
      .default([])
      .describe('who may sign in: accounts whose email (or preferred_username) is in one of these domains'),
    allowed_claim: z
      .object({ name: z.string().min(1), values: z.array(z.string().min(1)).min(1) })
      .strict()
      .nullable()
      .default(null)
      .describe('or: who may sign in by a claim (a group or app role) holding one of values; null: domains only'),
    admin_claim: z.string().min(1).default('roles').describe('the claim that makes an admin (Entra app roles: roles; groups: groups)'),
    admin_values: z.array(z.string().min(1)).default([]).describe('values of admin_claim that make an admin; []: nobody is an admin in the portal'),
    require_mfa: z.boolean().default(false).describe('refuse a sign-in whose amr claim does not contain mfa'),
    reauth_max_age_seconds: positiveInt().max(86_400).default(600).describe('creating a password needs a sign-in this recent, else the provider is asked again (max_age)'),
  })
  .strict();

const portalSchema = z
  .object({
    enabled: z.boolean().default(false).describe('serve the web portal (people manage their own app passwords; admins everyone\'s)'),
    host: z.string().default('::').describe('address the portal listens on'),
    port: z.number().int().min(0).max(65535).default(8443).describe('its port (0: any free port, for tests)'),
    public_url: z
      .string()
      .url()
      .nullable()
      .default(null)
      .describe('the URL people open, without a trailing slash (https://passgate.example.com); the redirect URI is <public_url>/auth/callback'),
    tls: z.enum(['listener', 'none']).default('listener').describe('listener: HTTPS with the mail listeners\' certificates (tls.certificates); none: plain HTTP behind a TLS-terminating proxy'),
    trusted_proxies: cidrList().default([]).describe('proxies whose X-Forwarded-For names the client (required with tls: none)'),
    oidc: section(portalOidcSchema),
    mailbox_grants: z
      .record(z.string().min(1), z.array(z.string().min(1)))
      .default({})
      .describe('user -> extra mailboxes they may create passwords for (shared mailboxes), besides their own'),
    session_minutes: positiveInt().max(7 * 24 * 60).default(480).describe('a portal session ends this long after sign-in'),
    idle_minutes: positiveInt().max(24 * 60).default(30).describe('or after this long without a request'),
    sign_in_per_minute: positiveInt().default(20).describe('sign-in starts and callbacks per address and minute'),
    create_per_hour: positiveInt().default(20).describe('app passwords one person may create per hour'),
  })
  .strict()
  .refine((p) => p.tls !== 'none' || p.trusted_proxies.length > 0, {
    message: 'tls: none is only for a portal behind a TLS-terminating proxy: list it in trusted_proxies',
    path: ['trusted_proxies'],
  });

/**
 * Longest window a limit may use: rate-limiter-flexible's memory store expires keys with setTimeout, which
 * cannot wait longer than 2^31 - 1 ms (24.8 days); a longer one would fire at once and forget the key.
 */
const MAX_LIMIT_SECONDS = 20 * 86_400;
const limitSeconds = () => positiveInt().max(MAX_LIMIT_SECONDS, `must be at most ${MAX_LIMIT_SECONDS} (20 days)`);

const rateLimitSchema = z
  .object({
    trusted_networks: cidrList().default([]).describe('CIDRs exempt from ip blocks and the per-user lock (your own offices)'),
    pair: z
      .object({
        max_failures: positiveInt().default(10).describe('consecutive failures per (username, ip) before a block'),
        block_seconds: limitSeconds().default(900).describe('first block of a (username, ip) pair; doubles on repeat'),
        max_block_seconds: limitSeconds().max(MAX_LIMIT_SECONDS - 86_400).default(86400).describe('longest block of a pair'),
      })
      .strict()
      .default({ max_failures: 10, block_seconds: 900, max_block_seconds: 86400 }),
    ip: z
      .object({
        burst_failures: positiveInt().default(20).describe('failures per ip in burst_seconds before it waits out the window'),
        burst_seconds: limitSeconds().default(60).describe('the burst window'),
        daily_failures: positiveInt().default(100).describe('failures per ip in a day before a long block'),
        block_seconds: limitSeconds().default(86400).describe('the long block of an ip'),
      })
      .strict()
      .default({ burst_failures: 20, burst_seconds: 60, daily_failures: 100, block_seconds: 86400 }),
    user: z
      .object({
        max_distinct_failures: positiveInt().default(100).describe('distinct wrong passwords per user in a day before a lock'),
        lock_seconds: limitSeconds().default(3600).describe('how long a locked user is refused (temporarily) from untrusted networks'),
        known_ip_days: z.number().int().min(0).max(20).default(20).describe('an ip the user logged in from is exempt from the lock this long; 0: off'),
      })
      .strict()
      .default({ max_distinct_failures: 100, lock_seconds: 3600, known_ip_days: 20 }),
  })
  .strict();

const logSchema = z
  .object({
    level: z.enum(['trace', 'debug', 'info', 'warn', 'error', 'fatal', 'silent']).default('info').describe('pino log level'),
  })
  .strict();


export const configSchema = z
  .object({
    data_dir: z.string().min(1).default('data').describe('folder for the embedded store, generated pepper and certificates'),
    shutdown_grace_seconds: z
      .number()
      .int()
      .min(0)
      .max(3600)
      .default(10)
      .describe('on SIGTERM, how long SMTP transactions in flight may take to finish before the rest are closed'),
    log: section(logSchema),
    security: section(securitySchema),
    app_passwords: section(appPasswordsSchema),
    sqlite: section(sqliteSchema),
    redis: section(redisSchema),
    audit: section(auditSchema),
    auth: section(authSchema),
    rate_limit: section(rateLimitSchema),
    oauth: section(oauthSchema),
    tls: section(tlsSchema),
    smtp: section(smtpSchema),
    imap: section(imapSchema),
    pop3: section(pop3Schema),
    ops: section(opsSchema),
    portal: section(portalSchema),
  })
  .strict();

export type RawConfig = z.infer<typeof configSchema>;
export type RedisConfig = RawConfig['redis'];
export type Argon2Config = RawConfig['security']['argon2'];
export type AppPasswordsConfig = RawConfig['app_passwords'];
export type RateLimitConfig = RawConfig['rate_limit'];
export type AuthConfig = RawConfig['auth'];
export type OAuthConfig = RawConfig['oauth'];
export type TlsConfig = RawConfig['tls'];
export type ListenerConfig = RawConfig['smtp']['listeners'][number];
export type SmtpConfig = Config['smtp'];
export type GraphConfig = RawConfig['smtp']['upstream']['graph'];
export type SmtpUpstreamConfig = RawConfig['smtp']['upstream'];
export type ImapConfig = RawConfig['imap'];
export type OpsConfig = RawConfig['ops'];
export type PortalConfig = RawConfig['portal'];
export type ImapUpstreamConfig = RawConfig['imap']['upstream'];
export type Pop3Config = RawConfig['pop3'];
export type Pop3UpstreamConfig = RawConfig['pop3']['upstream'];

/** The validated configuration with paths made absolute and the pepper resolved. */
export interface Config extends Omit<RawConfig, 'smtp'> {
  security: RawConfig['security'] & { pepper: string };
  /** check_from_header resolved: null becomes on when any mailbox's transport is graph (usesGraph). */
  smtp: Omit<RawConfig['smtp'], 'check_from_header'> & { check_from_header: boolean };
  /** True when Redis is configured: state is shared and limits are global. */
  redisEnabled: boolean;
  /** Where the configuration came from, for messages. */
  source: string;
}

export function isRedisConfigured(redis: RedisConfig): boolean {
  return redis.url !== null || redis.sentinels.length > 0 || redis.cluster_nodes.length > 0;
}

/** True when passgate speaks TLS to Redis: `redis.tls`, or a rediss:// url. */
export function redisUsesTls(redis: { tls: boolean; url: string | null }): boolean {
  return redis.tls || (redis.url?.startsWith('rediss://') ?? false);
}

/** The transport of a mailbox: its domain's entry in transport_by_domain (case-insensitive), else transport. */
export function transportFor(upstream: Pick<SmtpUpstreamConfig, 'transport' | 'transport_by_domain'>, mailbox: string): SubmissionTransport {
  const domain = mailbox.slice(mailbox.lastIndexOf('@') + 1).toLowerCase();
  for (const [name, transport] of Object.entries(upstream.transport_by_domain)) if (name.toLowerCase() === domain) return transport;
  return upstream.transport;
}

/** Some mailbox goes through Graph: the global transport, or one domain's. */
export function usesGraph(upstream: Pick<SmtpUpstreamConfig, 'transport' | 'transport_by_domain'>): boolean {
  return upstream.transport === 'graph' || Object.values(upstream.transport_by_domain).includes('graph');
}
