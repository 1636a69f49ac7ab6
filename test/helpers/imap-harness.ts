import { openApp, startServices, type App, type Services } from '../../src/app.js';
import { loadConfig } from '../../src/config/config-loader.js';
import { createLogger, type Logger } from '../../src/observability/logger.js';
import { DovecotServer } from './dovecot-server.js';
import { TestOAuthServer } from './oauth-server.js';
import { oauthSection } from './oauth-test-app.js';
import { makeTestConfig, type TestConfig } from './test-config.js';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { CLI_ACTOR } from '../../src/core/actor.js';

export interface ImapHarness {
  oauth: TestOAuthServer;
  dovecot: DovecotServer;
  tc: TestConfig;
  app: App;
  services: Services;
  ports: Record<string, number>;
  user: string;
  password: string;
  /** An access token the tests can use to reach Dovecot directly (the "direct connection"). */
  directToken(): Promise<string>;
  close(): Promise<void>;
}

const listener = (name: string, tls: string, extra: Record<string, unknown> = {}) => ({ name, host: '127.0.0.1', port: 0, tls, ...extra });

/**
 * Everything an IMAP end-to-end test needs, real and on loopback: the OAuth server, Dovecot validating tokens at
 * its introspection endpoint, and passgate with 143-style STARTTLS, 993-style implicit TLS, a plaintext listener
 * for a network the tests are not in, and a STARTTLS listener behind a PROXY balancer at 127.0.0.1.
 */
export async function startImapHarness(
  over: { imap?: Record<string, unknown>; rateLimit?: Record<string, unknown>; logger?: Logger } = {},
): Promise<ImapHarness> {
  const oauth = await new TestOAuthServer().start();
  const user = 'reader@example.com';
  const dovecot = await DovecotServer.start({ introspectionUrl: oauth.introspectionEndpoint, users: [user, 'other@example.com'] });
  const caDir = mkdtempSync(join(tmpdir(), 'passgate-dovecot-ca-'));
  writeFileSync(join(caDir, 'ca.pem'), dovecot.cert);
  const tc = makeTestConfig({
    auth: { failure_delay_ms: 50, failure_delay_jitter_ms: 0 },
    oauth: oauthSection(oauth),
    ops: { port: 0 },
    smtp: { enabled: false },
    ...(over.rateLimit ? { rate_limit: over.rateLimit } : {}),
    imap: {
      // Every test client comes from 127.0.0.1: only the tests about connection caps want the per-address cap.
      max_connections_per_ip: 1000,
      listeners: [
        listener('imap', 'starttls'),
        listener('imaps', 'implicit'),
        listener('lan-other', 'none', { plaintext_auth_from: ['10.99.0.0/16'] }),
        listener('behind-proxy', 'implicit', { proxy_protocol_from: ['127.0.0.1/32'] }),
      ],
      revocation_check_seconds: 1,
      upstream: { host: '127.0.0.1', port: dovecot.imapsPort, tls: 'implicit', ca_file: join(caDir, 'ca.pem'), servername: 'localhost' },
      ...over.imap,
    },
  });
  const app = await openApp(loadConfig({ path: tc.file, env: {}, cwd: tc.dir }).config, { logger: over.logger ?? createLogger('silent') });
  const services = await startServices(app);
  const { password } = await app.admin.appPasswords.create(CLI_ACTOR, { username: user, name: 'Thunderbird' });
  return {
    oauth,
    dovecot,
    tc,
    app,
    services,
    ports: services.imap!.ports(),
    user,
    password,
    directToken: async () => (await app.oauth!.tokens.getAccessToken(user)).token,
    async close() {
      await services.close(0);
      await app.close();
      await dovecot.stop();
      await oauth.stop();
      tc.cleanup();
      rmSync(caDir, { recursive: true, force: true });
    },
  };
}
