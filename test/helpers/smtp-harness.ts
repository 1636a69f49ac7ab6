import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { openApp, startServices, type App, type Services } from '../../src/app.js';
import { loadConfig } from '../../src/config/config-loader.js';
import { createLogger, type Logger } from '../../src/observability/logger.js';
import { generateSelfSignedCertificate } from '../../src/tls/self-signed-certificate.js';
import { TestOAuthServer } from './oauth-server.js';
import { oauthSection } from './oauth-test-app.js';
import { makeTestConfig, type TestConfig } from './test-config.js';
import { UpstreamSmtpServer, type UpstreamOptions } from './upstream-smtp-server.js';
import { CLI_ACTOR } from '../../src/core/actor.js';

export interface SmtpHarness {
  oauth: TestOAuthServer;
  upstream: UpstreamSmtpServer;
  tc: TestConfig;
  app: App;
  services: Services;
  ports: Record<string, number>;
  user: string;
  password: string;
  close(): Promise<void>;
}

const listener = (name: string, tls: string, extra: Record<string, unknown> = {}) => ({ name, host: '127.0.0.1', port: 0, tls, ...extra });

/**
 * Everything an SMTP end-to-end test needs, real and on loopback: the OAuth server, an Exchange-like upstream that
 * demands XOAUTH2 over STARTTLS, and passgate with five listeners (587-style STARTTLS, 465-style implicit TLS, a
 * plaintext listener for a network the tests are not in, one for 127.0.0.1, and a STARTTLS listener behind a
 * PROXY-protocol balancer at 127.0.0.1), plus one app password.
 */
export async function startSmtpHarness(
  over: {
    smtp?: Record<string, unknown>;
    upstream?: Record<string, unknown>;
    tls?: Record<string, unknown>;
    rateLimit?: Record<string, unknown>;
    logger?: Logger;
    /** Options of the upstream SMTP server itself (e.g. hidePipelining). */
    upstreamServer?: Pick<UpstreamOptions, 'hidePipelining' | 'promptGreeting'>;
    /** An OAuth server started by the test (shared with Dovecot, say); the harness leaves it running at close. */
    oauthServer?: TestOAuthServer;
    /** Keys added to the harness's oauth section (e.g. `token_encryption_key`, which Redis requires). */
    oauth?: Record<string, unknown>;
    /** Top-level config sections that replace the harness's (e.g. `auth`, `rate_limit`). */
    config?: Record<string, unknown>;
  } = {},
): Promise<SmtpHarness> {
  const oauth = over.oauthServer ?? (await new TestOAuthServer().start());
  const pair = await generateSelfSignedCertificate({ commonName: 'upstream.test', dnsNames: ['upstream.test'], ipAddresses: ['127.0.0.1'] });
  const upstream = await new UpstreamSmtpServer({ ...pair, introspectionEndpoint: oauth.introspectionEndpoint, ...over.upstreamServer }).start();
  const certDir = mkdtempSync(join(tmpdir(), 'passgate-upstream-ca-'));
  writeFileSync(join(certDir, 'ca.pem'), pair.cert);
  const tc = makeTestConfig({
    auth: { failure_delay_ms: 50, failure_delay_jitter_ms: 0 },
    oauth: { ...oauthSection(oauth), ...over.oauth },
    ops: { port: 0 },
    imap: { enabled: false },
    ...(over.tls ? { tls: over.tls } : {}),
    ...(over.rateLimit ? { rate_limit: over.rateLimit } : {}),
    ...over.config,
    smtp: {
      hostname: 'passgate.test',
      // Every test client comes from 127.0.0.1: only the tests about connection caps want the per-address cap.
      max_connections_per_ip: 1000,
      listeners: [
        listener('submission', 'starttls'),
        listener('submissions', 'implicit'),
        listener('lan-other', 'none', { plaintext_auth_from: ['10.99.0.0/16'] }),
        listener('lan-local', 'none', { plaintext_auth_from: ['127.0.0.1/32'] }),
        listener('behind-proxy', 'starttls', { proxy_protocol_from: ['127.0.0.1/32'] }),
      ],
      upstream: { host: '127.0.0.1', port: upstream.port, tls: 'starttls', ca_file: join(certDir, 'ca.pem'), servername: 'upstream.test', wait_seconds: 10, ...over.upstream },
      ...over.smtp,
    },
  });
  const app = await openApp(loadConfig({ path: tc.file, env: {}, cwd: tc.dir }).config, { logger: over.logger ?? createLogger('silent') });
  const services = await startServices(app);
  const user = 'scanner@example.com';
  const { password } = await app.admin.appPasswords.create(CLI_ACTOR, { username: user, name: 'Scanner, 3rd floor' });
  return {
    oauth,
    upstream,
    tc,
    app,
    services,
    ports: services.smtp!.ports(),
    user,
    password,
    async close() {
      await services.close(0);
      await app.close();
      await upstream.stop();
      if (!over.oauthServer) await oauth.stop();
      tc.cleanup();
      rmSync(certDir, { recursive: true, force: true });
    },
  };
}
