import { randomBytes } from 'node:crypto';
import { createWriteStream } from 'node:fs';
import { mkdir, mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { stringify } from 'yaml';
import { openApp, startServices } from '../src/app.js';
import { loadConfig } from '../src/config/config-loader.js';
import { createLogger } from '../src/observability/logger.js';
import { generateSelfSignedCertificate } from '../src/tls/self-signed-certificate.js';
import { DovecotServer } from '../test/helpers/dovecot-server.js';
import { TestOAuthServer } from '../test/helpers/oauth-server.js';
import { UpstreamSmtpServer } from '../test/helpers/upstream-smtp-server.js';
import { GraphServer } from '../test/helpers/graph-server.js';
import { MailFolder } from './mail-folder.js';
import { freePort, preferredPort } from './preferred-port.js';
import { TestOidcProvider } from '../test/helpers/oidc-provider.js';
import { CLI_ACTOR } from '../src/core/actor.js';

/** Fixed ports, so the printed commands stay the same between runs (any free port when one is taken). */
export const DEMO_PORTS = { submission: 2587, submissions: 2465, imap: 2143, imaps: 2993, pop3: 2110, pop3s: 2995, ops: 9465, portal: 8443 } as const;

export const DEMO_USER = 'demo@example.com';
export const DEMO_ADMIN = 'admin@example.com';

export interface DemoOptions {
  /** Take any free ports instead of DEMO_PORTS (tests; several demos at once). */
  anyPorts: boolean;
  /** Do not start Dovecot even when it is installed (shows the SMTP-only demo). */
  withoutDovecot: boolean;
  /** Send through a Microsoft Graph stand-in instead of the upstream SMTP server (smtp.upstream.transport: graph). */
  graph?: boolean;
}

export interface DemoStack {
  /** The temporary folder holding everything; removed by close(). */
  dir: string;
  user: string;
  /** The demo app password, grouped (shown once). */
  password: string;
  /** The self-signed certificate passgate (and the local upstreams) present: clients trust this file. */
  certFile: string;
  configFile: string;
  logFile: string;
  /** A ready message (CRLF lines) for curl --upload-file. */
  messageFile: string;
  ports: { submission: number; submissions: number; imap: number | null; imaps: number | null; pop3: number | null; pop3s: number | null; ops: number | null };
  upstream: { oauthUrl: string; smtpPort: number; dovecotImapsPort: number | null; /** The Graph stand-in, with --graph. */ graphUrl: string | null };
  /** Where the local upstream stores the demo user's mail (Dovecot's Maildir, or a folder of .eml files). */
  mailbox: string;
  /** The web portal, with the local sign-in (an OpenID provider standing in for Entra ID). */
  portal: { url: string; user: string; admin: string; issuer: string };
  /** Why IMAP is not part of this demo; null when it is. */
  imapSkipped: string | null;
  /** Stops passgate, the upstreams and Dovecot, and removes the folder. Idempotent. */
  close(): Promise<void>;
}

const listener = (name: string, port: number, tls: 'starttls' | 'implicit') => ({ name, host: '127.0.0.1', port, tls });

/**
 * Starts everything on loopback: a local OAuth 2.0 server, an Exchange-like SMTP server (XOAUTH2 checked at the
 * OAuth server) that delivers into local mailboxes, Dovecot serving those mailboxes over IMAP when it is installed,
 * and passgate itself (openApp + startServices, as `passgate serve` runs it) on its embedded defaults: SQLite and
 * the generated pepper in the folder, in-memory rate limits, OWASP argon2 parameters.
 */
export async function startDemo(options: DemoOptions): Promise<DemoStack> {
  const dir = await mkdtemp(join(tmpdir(), 'passgate-demo-'));
  const closers: (() => Promise<void>)[] = [() => rm(dir, { recursive: true, force: true })];
  let closing: Promise<void> | undefined;
  const close = () =>
    (closing ??= (async () => {
      for (const closer of closers.reverse()) await closer().catch(() => {});
    })());
  try {
    const tlsDir = join(dir, 'tls');
    await mkdir(tlsDir, { mode: 0o700 });
    const pair = await generateSelfSignedCertificate({ commonName: 'localhost', dnsNames: ['localhost'], ipAddresses: ['127.0.0.1', '::1'] });
    const certFile = join(tlsDir, 'cert.pem');
    await writeFile(certFile, pair.cert, { mode: 0o644 });
    await writeFile(join(tlsDir, 'key.pem'), pair.key, { mode: 0o600 });

    const oauth = await new TestOAuthServer({ clientId: 'passgate-demo', clientSecret: randomBytes(18).toString('base64url') }).start();
    closers.push(() => oauth.stop());

    let dovecot: DovecotServer | null = null;
    let imapSkipped: string | null = null;
    if (options.withoutDovecot) imapSkipped = 'IMAP part skipped (--without-dovecot)';
    else {
      try {
        dovecot = await DovecotServer.start({ introspectionUrl: oauth.introspectionEndpoint, users: [DEMO_USER], ...pair });
        const started = dovecot;
        closers.push(() => started.stop());
      } catch (error) {
        const message = (error as Error).message;
        imapSkipped = /no dovecot binary/.test(message)
          ? 'Dovecot is not installed: IMAP part skipped; apt-get install dovecot-imapd'
          : `Dovecot did not start: IMAP part skipped (${message.split('\n')[0]})`;
      }
    }
    const folder = new MailFolder(join(dir, 'mail'));
    const deliver = (user: string, raw: Buffer) => (dovecot ? dovecot.deliver(user, raw) : folder.deliver(user, raw));
    const upstream = await new UpstreamSmtpServer({
      ...pair,
      introspectionEndpoint: oauth.introspectionEndpoint,
      // Every recipient is local: nothing the demo accepts leaves this machine.
      store: async (delivery) => {
        for (const to of delivery.to) await deliver(to, delivery.raw);
      },
    }).start();
    closers.push(() => upstream.stop());
    // Issue 20: with --graph, a Graph stand-in (sendMail, drafts, upload sessions) delivers into the same mailboxes.
    let graph: GraphServer | null = null;
    if (options.graph) {
      const started = await new GraphServer(oauth).start();
      started.onDeliver = async (delivery) => {
        for (const to of delivery.recipients) await deliver(to, delivery.visible!);
      };
      closers.push(() => started.stop());
      graph = started;
    }

    const port = (preferred: number) => (options.anyPorts ? Promise.resolve(0) : preferredPort(preferred));
    const secretFile = join(dir, 'oauth-client-secret');
    await writeFile(secretFile, oauth.clientSecret, { mode: 0o600 });
    // The portal's URL is its redirect URI at the provider: the port is settled before either starts.
    const portalPort = (options.anyPorts ? 0 : await preferredPort(DEMO_PORTS.portal)) || (await freePort());
    const portalUrl = `https://127.0.0.1:${portalPort}`;
    const oidc = await new TestOidcProvider({
      accounts: [
        { email: DEMO_USER, name: 'Demo User' },
        { email: DEMO_ADMIN, name: 'Demo Admin', roles: ['Passgate.Admin'] },
      ],
      redirectUris: [`${portalUrl}/auth/callback`],
    }).start();
    closers.push(() => oidc.stop());
    const portalSecretFile = join(dir, 'portal-client-secret');
    await writeFile(portalSecretFile, oidc.clientSecret, { mode: 0o600 });
    const configFile = join(dir, 'passgate.yaml');
    const tree = {
      data_dir: 'data',
      oauth: {
        provider: 'generic',
        mode: 'app',
        client_id: oauth.clientId,
        client_secret_file: secretFile,
        token_endpoint: oauth.tokenEndpoint,
        scopes: ['mail'],
      },
      tls: { certificates: [{ cert_file: 'tls/cert.pem', key_file: 'tls/key.pem' }] },
      smtp: {
        listeners: [listener('submission', await port(DEMO_PORTS.submission), 'starttls'), listener('submissions', await port(DEMO_PORTS.submissions), 'implicit')],
        upstream: {
          host: '127.0.0.1',
          port: upstream.port,
          tls: 'starttls',
          ca_file: 'tls/cert.pem',
          servername: 'localhost',
          ...(graph ? { transport: 'graph', graph: { base_url: graph.baseUrl } } : {}),
        },
      },
      imap: dovecot
        ? {
            listeners: [listener('imap', await port(DEMO_PORTS.imap), 'starttls'), listener('imaps', await port(DEMO_PORTS.imaps), 'implicit')],
            upstream: { host: '127.0.0.1', port: dovecot.imapsPort, tls: 'implicit', ca_file: 'tls/cert.pem', servername: 'localhost' },
          }
        : { enabled: false },
      // POP3 where Dovecot serves it too (Debian's dovecot-pop3d).
      pop3: dovecot?.pop3
        ? {
            enabled: true,
            listeners: [listener('pop3', await port(DEMO_PORTS.pop3), 'starttls'), listener('pop3s', await port(DEMO_PORTS.pop3s), 'implicit')],
            upstream: { host: '127.0.0.1', port: dovecot.pop3sPort, tls: 'implicit', ca_file: 'tls/cert.pem', servername: 'localhost' },
          }
        : { enabled: false },
      ops: { host: '127.0.0.1', port: await port(DEMO_PORTS.ops) },
      app_passwords: { setup_host: '127.0.0.1' },
      portal: {
        enabled: true,
        host: '127.0.0.1',
        port: portalPort,
        public_url: portalUrl,
        oidc: {
          issuer: oidc.issuer,
          client_id: oidc.clientId,
          client_secret_file: portalSecretFile,
          allowed_domains: ['example.com'],
          admin_claim: 'roles',
          admin_values: ['Passgate.Admin'],
        },
      },
    };
    const header = '# Written by `npm run demo`: passgate on its embedded defaults, pointed at the demo\'s local servers.\n';
    await writeFile(configFile, header + stringify(tree), { mode: 0o600 });

    const logFile = join(dir, 'passgate.log');
    const logStream = createWriteStream(logFile, { flags: 'a', mode: 0o600 });
    closers.push(() => new Promise<void>((resolve) => logStream.end(() => resolve())));
    const { config, warnings } = loadConfig({ path: configFile, env: process.env, cwd: dir });
    const logger = createLogger(config.log.level, logStream);
    for (const warning of warnings) logger.warn({ config: config.source }, warning);
    const app = await openApp(config, { logger, defaultMetrics: true });
    closers.push(() => app.close());
    const services = await startServices(app);
    closers.push(() => services.close(5_000));
    const smtpPorts = services.smtp!.ports();
    const imapPorts = services.imap?.ports() ?? {};
    const pop3Ports = services.pop3?.ports() ?? {};
    logger.info({ smtp: smtpPorts, imap: imapPorts, pop3: pop3Ports, ops: services.ops?.port ?? null, portal: services.portal?.port ?? null }, 'passgate started');

    const { password } = await app.admin.appPasswords.create(CLI_ACTOR, { username: DEMO_USER, name: 'npm run demo', scopes: services.pop3 ? ['smtp', 'imap', 'pop3'] : ['smtp', 'imap'] });
    const messageFile = join(dir, 'message.eml');
    await writeFile(messageFile, demoMessage());

    return {
      dir,
      user: DEMO_USER,
      password,
      certFile,
      configFile,
      logFile,
      messageFile,
      ports: {
        submission: smtpPorts.submission!,
        submissions: smtpPorts.submissions!,
        imap: imapPorts.imap ?? null,
        imaps: imapPorts.imaps ?? null,
        pop3: pop3Ports.pop3 ?? null,
        pop3s: pop3Ports.pop3s ?? null,
        ops: services.ops?.port ?? null,
      },
      upstream: { oauthUrl: oauth.url, smtpPort: upstream.port, dovecotImapsPort: dovecot?.imapsPort ?? null, graphUrl: graph?.baseUrl ?? null },
      mailbox: dovecot ? dovecot.maildir(DEMO_USER) : folder.folder(DEMO_USER),
      portal: { url: portalUrl, user: DEMO_USER, admin: DEMO_ADMIN, issuer: oidc.issuer },
      imapSkipped,
      close,
    };
  } catch (error) {
    await close();
    throw error;
  }
}

/** RFC 5322 message with CRLF line ends (SMTP's; curl --upload-file sends the file as it is). */
function demoMessage(): string {
  return [
    `From: Demo <${DEMO_USER}>`,
    `To: Demo <${DEMO_USER}>`,
    'Subject: Hello from curl through passgate',
    `Date: ${new Date().toUTCString().replace('GMT', '+0000')}`,
    `Message-ID: <${randomBytes(8).toString('hex')}@passgate.demo>`,
    'MIME-Version: 1.0',
    'Content-Type: text/plain; charset=utf-8',
    '',
    'This message went from curl to passgate (app password), then to the local upstream with an OAuth token.',
    '',
  ].join('\r\n');
}
