import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { mkdir } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { openApp } from '../../src/app.js';
import { loadConfig } from '../../src/config/config-loader.js';
import { createLogger } from '../../src/observability/logger.js';
import { generateSelfSignedCertificate } from '../../src/tls/self-signed-certificate.js';
import { DovecotServer } from '../helpers/dovecot-server.js';
import { oauthSection } from '../helpers/oauth-test-app.js';
import { startRedis, type TestRedis } from '../helpers/redis-server.js';
import { makeTestConfig, type TestConfig } from '../helpers/test-config.js';
import { PassgateProcess } from './passgate-process.js';
import { DependencyProcess } from './dependency-process.js';
import { CLI_ACTOR } from '../../src/core/actor.js';

export type DependencyName = 'smtp-upstream' | 'dovecot' | 'oauth' | 'redis';
export const DEPENDENCIES: readonly DependencyName[] = ['smtp-upstream', 'dovecot', 'oauth', 'redis'];

/** One dependency that the chaos can take away and bring back on the same port. */
export interface Dependency {
  name: DependencyName;
  /** How it goes away: a kill (connections reset, state kept where the real thing keeps it). */
  down(): Promise<void>;
  up(): Promise<void>;
  /** Which passgate service depends on it. */
  affects: { smtp: boolean; imap: boolean };
}

export interface ChaosEnv {
  dir: string;
  /** The OAuth server and the upstream SMTP server run as processes, so a kill is a SIGKILL. */
  oauth: DependencyProcess;
  redis: TestRedis;
  upstream: DependencyProcess;
  dovecot: DovecotServer;
  passgate: PassgateProcess;
  tc: TestConfig;
  users: { user: string; password: string }[];
  dependencies: Record<DependencyName, Dependency>;
  /** Stops everything; `keep` leaves the folder (passgate.log, dovecot.log) for a post-mortem. */
  close(keep?: boolean): Promise<void>;
}

export interface ChaosEnvOptions {
  users: number;
  /** Seconds an access token lives at the OAuth server: short, so passgate refreshes during the run. */
  tokenLifetimeSeconds: number;
  /**
   * passgate's oauth.refresh_margin_seconds. It must exceed the longest time an upstream may take to check a token
   * (Dovecot retries an unreachable introspection endpoint for seconds): a token used with 2 s left was seen to
   * expire during Dovecot's check, a wrong-password answer. Production keeps 600 s of 3600.
   */
  refreshMarginSeconds: number;
}

/**
 * Everything real, on loopback: the OAuth server (token and introspection endpoints), a Redis with an fsynced
 * append-only file, the Exchange-like upstream SMTP server and Dovecot (both checking tokens at the OAuth server),
 * and `passgate serve` in its own process on Redis, with one app password per user.
 */
export async function startChaosEnv(options: ChaosEnvOptions): Promise<ChaosEnv> {
  const dir = mkdtempSync(join(tmpdir(), 'passgate-chaos-'));
  let keep = false;
  const cleanups: (() => Promise<void> | void)[] = [() => void (keep || rmSync(dir, { recursive: true, force: true }))];
  const cleanup = async () => {
    for (const step of cleanups.reverse()) await Promise.resolve(step()).catch(() => {});
  };
  try {
    const client = { clientId: 'passgate-chaos-client', clientSecret: 'chaos-client-secret-value' };
    const oauth = await new DependencyProcess({ kind: 'oauth', port: 0, tokenLifetimeSeconds: options.tokenLifetimeSeconds, stateFile: join(dir, 'oauth-tokens.jsonl'), ...client }).start();
    cleanups.push(() => oauth.kill());
    const oauthUrl = `http://127.0.0.1:${oauth.port}`;
    const introspectionEndpoint = `${oauthUrl}/introspect`;
    await mkdir(join(dir, 'redis'));
    const redis = await startRedis({ own: true, persistDir: join(dir, 'redis') });
    cleanups.push(() => redis.close());
    const pair = await generateSelfSignedCertificate({ commonName: 'upstream.test', dnsNames: ['upstream.test'], ipAddresses: ['127.0.0.1'] });
    writeFileSync(join(dir, 'upstream-key.pem'), pair.key);
    writeFileSync(join(dir, 'upstream-ca.pem'), pair.cert);
    const upstream = await new DependencyProcess({
      kind: 'smtp-upstream',
      port: 0,
      keyFile: join(dir, 'upstream-key.pem'),
      certFile: join(dir, 'upstream-ca.pem'),
      introspectionEndpoint,
      deliveryLog: join(dir, 'deliveries.jsonl'),
    }).start();
    cleanups.push(() => upstream.kill());
    const users = Array.from({ length: options.users }, (_, i) => `chaos${i + 1}@example.com`);
    const dovecot = await DovecotServer.start({ introspectionUrl: introspectionEndpoint, users });
    cleanups.push(async () => {
      if (keep) writeFileSync(join(dir, 'dovecot.log'), await dovecot.log());
      await dovecot.stop();
    });
    writeFileSync(join(dir, 'dovecot-ca.pem'), dovecot.cert);

    const listener = (name: string) => ({ name, host: '127.0.0.1', port: 0, tls: 'implicit' });
    const tc = makeTestConfig({
      log: { level: 'info' },
      redis: { url: redis.url, key_prefix: redis.prefix, command_timeout_ms: 1000 },
      auth: { failure_delay_ms: 50, failure_delay_jitter_ms: 0 },
      oauth: oauthSection({ ...client, tokenEndpoint: `${oauthUrl}/token`, deviceEndpoint: `${oauthUrl}/devicecode` }, { refresh_margin_seconds: options.refreshMarginSeconds }),
      ops: { port: 0 },
      smtp: {
        hostname: 'passgate.test',
        listeners: [listener('submissions')],
        upstream: {
          host: '127.0.0.1',
          port: upstream.port,
          tls: 'starttls',
          ca_file: join(dir, 'upstream-ca.pem'),
          servername: 'upstream.test',
          connect_timeout_seconds: 5,
          command_timeout_seconds: 10,
          data_timeout_seconds: 15,
          wait_seconds: 10,
          idle_seconds: 30,
        },
      },
      imap: {
        listeners: [listener('imaps')],
        upstream: { host: '127.0.0.1', port: dovecot.imapsPort, tls: 'implicit', ca_file: join(dir, 'dovecot-ca.pem'), servername: 'localhost', connect_timeout_seconds: 5 },
      },
    });
    cleanups.push(() => tc.cleanup());

    // The app passwords, written to Redis before passgate starts (as `passgate app-password create` would).
    const admin = await openApp(loadConfig({ path: tc.file, env: {}, cwd: tc.dir }).config, { logger: createLogger('silent') });
    const accounts: { user: string; password: string }[] = [];
    try {
      for (const user of users) {
        const { password } = await admin.admin.appPasswords.create(CLI_ACTOR, { username: user, name: 'chaos client' });
        accounts.push({ user, password });
      }
    } finally {
      await admin.close();
    }

    const passgate = await PassgateProcess.start(tc.file, tc.dir, join(dir, 'passgate.log'));
    cleanups.push(async () => void (await passgate.stop()));

    const dependencies: Record<DependencyName, Dependency> = {
      'smtp-upstream': { name: 'smtp-upstream', down: () => upstream.kill(), up: async () => void (await upstream.start()), affects: { smtp: true, imap: false } },
      dovecot: { name: 'dovecot', down: () => dovecot.kill(), up: () => dovecot.restart(), affects: { smtp: false, imap: true } },
      // Killed as processes (SIGKILL). The OAuth server keeps its issued tokens across the restart, as a real
      // provider's signed tokens outlive one; the upstream keeps what it accepted (written before its 250).
      oauth: { name: 'oauth', down: () => oauth.kill(), up: async () => void (await oauth.start()), affects: { smtp: true, imap: true } },
      redis: { name: 'redis', down: () => redis.stop(), up: () => redis.start(), affects: { smtp: true, imap: true } },
    };
    return {
      dir,
      oauth,
      redis,
      upstream,
      dovecot,
      passgate,
      tc,
      users: accounts,
      dependencies,
      async close(keepFolder = false) {
        keep = keepFolder;
        await cleanup();
      },
    };
  } catch (error) {
    await cleanup();
    throw error;
  }
}
