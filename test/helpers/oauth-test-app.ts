import { randomBytes } from 'node:crypto';
import { openApp, type App } from '../../src/app.js';
import { loadConfig } from '../../src/config/config-loader.js';
import { createLogger } from '../../src/observability/logger.js';
import type { TestOAuthServer } from './oauth-server.js';
import { makeTestConfig, type TestConfig } from './test-config.js';

export const TEST_TOKEN_KEY = randomBytes(32).toString('base64');

/** The `oauth` section that points passgate at a TestOAuthServer as a generic provider. */
export function oauthSection(server: Pick<TestOAuthServer, 'clientId' | 'clientSecret' | 'tokenEndpoint' | 'deviceEndpoint'>, over: Record<string, unknown> = {}): Record<string, unknown> {
  return {
    provider: 'generic',
    mode: 'app',
    client_id: server.clientId,
    client_secret: server.clientSecret,
    token_endpoint: server.tokenEndpoint,
    device_authorization_endpoint: server.deviceEndpoint,
    scopes: ['mail'],
    refresh_margin_seconds: 1,
    request_timeout_seconds: 2,
    retry_base_seconds: 1,
    retry_max_seconds: 4,
    token_encryption_key: TEST_TOKEN_KEY,
    ...over,
  };
}

export interface OAuthTestApp {
  tc: TestConfig;
  app: App;
  /** Closes the app and opens a new one on the same configuration and data (a passgate restart). */
  restart(): Promise<App>;
  close(): Promise<void>;
}

export async function openOAuthTestApp(tree: Record<string, unknown>): Promise<OAuthTestApp> {
  const tc = makeTestConfig(tree);
  const open = () => openApp(loadConfig({ path: tc.file, env: {}, cwd: tc.dir }).config, { logger: createLogger('silent') });
  const handle: OAuthTestApp = {
    tc,
    app: await open(),
    async restart() {
      await handle.app.close();
      handle.app = await open();
      return handle.app;
    },
    async close() {
      await handle.app.close();
      tc.cleanup();
    },
  };
  return handle;
}
