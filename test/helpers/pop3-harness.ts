import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { openApp, startServices, type App, type Services } from '../../src/app.js';
import { loadConfig } from '../../src/config/config-loader.js';
import { CLI_ACTOR } from '../../src/core/actor.js';
import { createLogger, type Logger } from '../../src/observability/logger.js';
import { DovecotServer, dovecotPop3Installed } from './dovecot-server.js';
import { TestOAuthServer } from './oauth-server.js';
import { oauthSection } from './oauth-test-app.js';
import { makeTestConfig, type TestConfig } from './test-config.js';

export interface Pop3Harness {
  oauth: TestOAuthServer;
  dovecot: DovecotServer;
  tc: TestConfig;
  app: App;
  services: Services;
  ports: Record<string, number>;
  user: string;
  password: string;
  /** An access token the tests can use to reach Dovecot's POP3 directly (the "direct connection"). */
  directToken(): Promise<string>;
  close(): Promise<void>;
}

const listener = (name: string, tls: string, extra: Record<string, unknown> = {}) => ({ name, host: '127.0.0.1', port: 0, tls, ...extra });

/**
 * Everything a POP3 end-to-end test needs, real and on loopback: the OAuth server, Dovecot's POP3 validating tokens
 * at its introspection endpoint, and passgate with 110-style STLS, 995-style implicit TLS, and a plaintext listener
 * for a network the tests are not in, and an implicit-TLS listener behind a PROXY balancer at 127.0.0.1. SMTP and IMAP
 * are off. The app password is created with the default scopes.
 */
export async function startPop3Harness(over: { pop3?: Record<string, unknown>; logger?: Logger } = {}): Promise<Pop3Harness> {
  if (!dovecotPop3Installed()) throw new Error('Dovecot\'s POP3 server is not installed: apt-get install dovecot-pop3d (see .ci/apt-packages)');
  const oauth = await new TestOAuthServer().start();
  const user = 'fetcher@example.com';
  const dovecot = await DovecotServer.start({ introspectionUrl: oauth.introspectionEndpoint, users: [user] });
  const caDir = mkdtempSync(join(tmpdir(), 'passgate-dovecot-ca-'));
  writeFileSync(join(caDir, 'ca.pem'), dovecot.cert);
  const tc = makeTestConfig({
    auth: { failure_delay_ms: 200, failure_delay_jitter_ms: 0 },
    oauth: oauthSection(oauth),
    ops: { port: 0 },
    smtp: { enabled: false },
    imap: { enabled: false, revocation_check_seconds: 1 },
    pop3: {
      enabled: true,
      max_connections_per_ip: 1000,
      listeners: [
        listener('pop3', 'starttls'),
        listener('pop3s', 'implicit'),
        listener('lan-other', 'none', { plaintext_auth_from: ['10.99.0.0/16'] }),
        listener('behind-proxy', 'implicit', { proxy_protocol_from: ['127.0.0.1/32'] }),
      ],
      upstream: { host: '127.0.0.1', port: dovecot.pop3sPort, tls: 'implicit', ca_file: join(caDir, 'ca.pem'), servername: 'localhost' },
      ...over.pop3,
    },
  });
  const app = await openApp(loadConfig({ path: tc.file, env: {}, cwd: tc.dir }).config, { logger: over.logger ?? createLogger('silent') });
  const services = await startServices(app);
  const { password } = await app.admin.appPasswords.create(CLI_ACTOR, { username: user, name: 'Old Outlook' });
  return {
    oauth,
    dovecot,
    tc,
    app,
    services,
    ports: services.pop3!.ports(),
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
