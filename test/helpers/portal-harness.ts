import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { once } from 'node:events';
import { createServer, type AddressInfo } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { openApp, startServices, type App, type Services } from '../../src/app.js';
import { loadConfig } from '../../src/config/config-loader.js';
import type { Clock } from '../../src/core/clock.js';
import { createLogger, type Logger } from '../../src/observability/logger.js';
import { generateSelfSignedCertificate } from '../../src/tls/self-signed-certificate.js';
import { DovecotServer } from './dovecot-server.js';
import { TestOAuthServer } from './oauth-server.js';
import { oauthSection } from './oauth-test-app.js';
import { TestOidcProvider, type TestAccount } from './oidc-provider.js';
import { makeTestConfig, type TestConfig } from './test-config.js';
import { UpstreamSmtpServer } from './upstream-smtp-server.js';

export const PORTAL_USER = 'alice@example.com';
export const PORTAL_OTHER = 'bob@example.com';
export const PORTAL_ADMIN = 'admin@example.com';
export const PORTAL_OUTSIDER = 'mallory@elsewhere.test';

const ACCOUNTS: TestAccount[] = [
  { email: PORTAL_USER, name: 'Alice Example' },
  { email: PORTAL_OTHER, name: 'Bob Example' },
  { email: PORTAL_ADMIN, name: 'Ada Admin', roles: ['Passgate.Admin'] },
  { email: PORTAL_OUTSIDER, name: 'Mallory Outsider' },
];

export interface PortalHarness {
  oidc: TestOidcProvider;
  tc: TestConfig;
  app: App;
  services: Services;
  /** https://127.0.0.1:<port>, the portal's public URL. */
  url: string;
  /** With `mail`: the SMTP (implicit TLS) and IMAP (implicit TLS) listeners' ports. */
  smtpPort: number | null;
  imapPort: number | null;
  close(): Promise<void>;
}

/** A free loopback port: the portal's public URL (and so the redirect URI) must be known before it starts. */
async function freePort(): Promise<number> {
  const server = createServer().listen(0, '127.0.0.1');
  await once(server, 'listening');
  const { port } = server.address() as AddressInfo;
  await new Promise<void>((resolve) => server.close(() => resolve()));
  return port;
}

/** Real port numbers (not 0), so the setup sheet shows what a device would be told. */
const listener = async (name: string, tls: string) => ({ name, host: '127.0.0.1', port: await freePort(), tls });

/**
 * The portal with real parts on loopback: passgate (openApp + startServices, as `passgate serve`) with the portal
 * over HTTPS (the listeners' self-signed certificate), the OIDC provider standing in for Entra, and with `mail` the
 * test OAuth server, an Exchange-like SMTP upstream and Dovecot, so a password made in the portal is tried for real.
 */
export async function startPortalHarness(
  over: {
    mail?: boolean;
    portal?: Record<string, unknown>;
    oidc?: Record<string, unknown>;
    /** Top-level config sections added to the harness's (e.g. `redis`). */
    config?: Record<string, unknown>;
    clock?: Clock;
    logger?: Logger;
  } = {},
): Promise<PortalHarness> {
  const port = await freePort();
  const url = `https://127.0.0.1:${port}`;
  const oidc = await new TestOidcProvider({ accounts: ACCOUNTS, redirectUris: [`${url}/auth/callback`] }).start();
  const cleanups: (() => Promise<void> | void)[] = [() => oidc.stop()];
  let mail: Record<string, unknown> = { smtp: { enabled: false }, imap: { enabled: false } };
  if (over.mail) {
    const oauth = await new TestOAuthServer().start();
    cleanups.push(() => oauth.stop());
    const pair = await generateSelfSignedCertificate({ commonName: 'upstream.test', dnsNames: ['upstream.test'], ipAddresses: ['127.0.0.1'] });
    const upstream = await new UpstreamSmtpServer({ ...pair, introspectionEndpoint: oauth.introspectionEndpoint }).start();
    cleanups.push(() => upstream.stop());
    const dovecot = await DovecotServer.start({ introspectionUrl: oauth.introspectionEndpoint, users: [PORTAL_USER, PORTAL_OTHER, PORTAL_ADMIN] });
    cleanups.push(() => dovecot.stop());
    const caDir = mkdtempSync(join(tmpdir(), 'passgate-portal-ca-'));
    cleanups.push(() => rmSync(caDir, { recursive: true, force: true }));
    writeFileSync(join(caDir, 'smtp.pem'), pair.cert);
    writeFileSync(join(caDir, 'imap.pem'), dovecot.cert);
    mail = {
      oauth: oauthSection(oauth),
      smtp: {
        hostname: 'passgate.test',
        max_connections_per_ip: 1000,
        listeners: [await listener('submissions', 'implicit')],
        upstream: { host: '127.0.0.1', port: upstream.port, tls: 'starttls', ca_file: join(caDir, 'smtp.pem'), servername: 'upstream.test', wait_seconds: 10 },
      },
      imap: {
        max_connections_per_ip: 1000,
        listeners: [await listener('imaps', 'implicit')],
        revocation_check_seconds: 1,
        upstream: { host: '127.0.0.1', port: dovecot.imapsPort, tls: 'implicit', ca_file: join(caDir, 'imap.pem'), servername: 'localhost' },
      },
    };
  }
  const tc = makeTestConfig({
    auth: { failure_delay_ms: 50, failure_delay_jitter_ms: 0 },
    ops: { enabled: false },
    app_passwords: { setup_host: 'mail.example.com' },
    ...mail,
    ...over.config,
    portal: {
      enabled: true,
      host: '127.0.0.1',
      port,
      public_url: url,
      ...over.portal,
      oidc: {
        issuer: oidc.issuer,
        client_id: oidc.clientId,
        client_secret: oidc.clientSecret,
        allowed_domains: ['example.com'],
        admin_claim: 'roles',
        admin_values: ['Passgate.Admin'],
        ...over.oidc,
      },
    },
  });
  cleanups.push(() => tc.cleanup());
  try {
    const app = await openApp(loadConfig({ path: tc.file, env: {}, cwd: tc.dir }).config, { logger: over.logger ?? createLogger('silent'), ...(over.clock ? { clock: over.clock } : {}) });
    cleanups.push(() => app.close());
    const services = await startServices(app);
    cleanups.push(() => services.close(0));
    return {
      oidc,
      tc,
      app,
      services,
      url,
      smtpPort: services.smtp?.ports().submissions ?? null,
      imapPort: services.imap?.ports().imaps ?? null,
      close: () => runAll(cleanups),
    };
  } catch (error) {
    await runAll(cleanups);
    throw error;
  }
}

async function runAll(cleanups: (() => Promise<void> | void)[]): Promise<void> {
  for (const cleanup of cleanups.splice(0).reverse()) await cleanup();
}
