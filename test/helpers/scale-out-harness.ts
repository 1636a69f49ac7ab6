import { once } from 'node:events';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { connect as tlsConnect } from 'node:tls';
import { openApp, startServices, type App, type Services } from '../../src/app.js';
import { createLogger } from '../../src/observability/logger.js';
import { generateSelfSignedCertificate } from '../../src/tls/self-signed-certificate.js';
import { CountingHasher } from './counting-hasher.js';
import { DovecotServer } from './dovecot-server.js';
import { startHaproxy, type TestHaproxy } from './haproxy.js';
import { ImapTranscript } from './imap-transcript.js';
import { TestOAuthServer } from './oauth-server.js';
import { oauthSection } from './oauth-test-app.js';
import { startRedisCluster } from './redis-cluster.js';
import { startRedis, type TestRedis } from './redis-server.js';
import { SmtpTranscript } from './smtp-transcript.js';
import { makeTestConfig, type TestConfig } from './test-config.js';
import { UpstreamSmtpServer } from './upstream-smtp-server.js';

/** The real peers every instance talks to, shared by the scale-out suites: OAuth, Dovecot (IMAP), an SMTP upstream. */
export interface Peers {
  oauth: TestOAuthServer;
  dovecot: DovecotServer;
  upstream: UpstreamSmtpServer;
  caFile: string;
  close(): Promise<void>;
}

export async function startPeers(): Promise<Peers> {
  const oauth = await new TestOAuthServer().start();
  const dovecot = await DovecotServer.start({ introspectionUrl: oauth.introspectionEndpoint, users: ['reader@example.com'] });
  const pair = await generateSelfSignedCertificate({ commonName: 'localhost', dnsNames: ['localhost'], ipAddresses: ['127.0.0.1'] });
  const upstream = await new UpstreamSmtpServer({ ...pair, introspectionEndpoint: oauth.introspectionEndpoint }).start();
  const dir = mkdtempSync(join(tmpdir(), 'passgate-scale-ca-'));
  const caFile = join(dir, 'ca.pem');
  writeFileSync(caFile, `${dovecot.cert}\n${pair.cert}`);
  return {
    oauth,
    dovecot,
    upstream,
    caFile,
    async close() {
      await upstream.stop();
      await dovecot.stop();
      await oauth.stop();
      rmSync(dir, { recursive: true, force: true });
    },
  };
}

export interface Instance {
  name: string;
  tc: TestConfig;
  app: App;
  services: Services;
  /** Counts this instance's argon2 verifications. */
  hasher: CountingHasher;
  /** Live IMAP sessions this instance holds. */
  readonly liveSessions: number;
  /** Stops serving and closes everything (an instance lost: its process ends, Redis keeps the state). */
  close(): Promise<void>;
}

export interface Deployment {
  backend: 'standalone' | 'cluster';
  /** The standalone Redis (null on a cluster), to take it away. */
  redis: TestRedis | null;
  /** Freeze whatever Redis the instances share (the standalone server, or every node of the cluster) and wake it. */
  pauseRedis(): void;
  resumeRedis(): void;
  instances: [Instance, Instance];
  haproxy: TestHaproxy;
  /** A TLS connection to HAProxy's IMAP frontend, from ::1, greeted. */
  imap(): Promise<ImapTranscript & { clientIp: string }>;
  /** A TLS connection to HAProxy's SMTP frontend (implicit TLS, 465-style), from ::1, greeted. */
  smtp(): Promise<SmtpTranscript & { clientIp: string }>;
  close(): Promise<void>;
}

/** The listener each instance has for each protocol: implicit TLS, accepting PROXY headers only from HAProxy. */
const behindHaproxy = { name: 'behind-haproxy', host: '127.0.0.1', port: 0, tls: 'implicit', proxy_protocol_from: ['127.0.0.1/32'] };

/**
 * Two passgate instances in this process (openApp + startServices, as `passgate serve` runs them) on one shared
 * Redis — a private standalone redis-server, or a three-master Redis Cluster — behind a real HAProxy speaking PROXY
 * protocol v2. Clients reach HAProxy on ::1 while HAProxy reaches the instances from 127.0.0.1, so an audited
 * ::1 can only have come from the PROXY header.
 */
export async function startDeployment(backend: Deployment['backend'], peers: Peers, tree: Record<string, unknown> = {}): Promise<Deployment> {
  const closers: (() => Promise<void>)[] = [];
  const closeAll = async () => {
    for (const close of closers.reverse()) await close().catch(() => {});
  };
  try {
    let redis: Record<string, unknown>;
    let standalone: TestRedis | null = null;
    let frozen: { pause(): void; resume(): void };
    if (backend === 'cluster') {
      const cluster = await startRedisCluster();
      frozen = cluster;
      closers.push(() => cluster.close());
      redis = { cluster_nodes: cluster.nodes, key_prefix: cluster.prefix };
    } else {
      const server = await startRedis({ own: true });
      standalone = server;
      frozen = server;
      closers.push(() => server.close());
      redis = { url: server.url, key_prefix: server.prefix };
    }
    const instances: Instance[] = [];
    for (const name of ['a', 'b']) {
      const instance = await startInstance(name, peers, { ...tree, redis });
      closers.push(() => instance.close());
      instances.push(instance);
    }
    const servers = (protocol: 'smtp' | 'imap') =>
      instances.map((i) => ({ name: i.name, host: '127.0.0.1', port: i.services[protocol]!.ports()['behind-haproxy']! }));
    const haproxy = await startHaproxy({ frontends: { smtp: servers('smtp'), imap: servers('imap') } });
    closers.push(() => haproxy.stop());
    const open = async (port: number) => {
      const socket = tlsConnect({ host: '::1', port, rejectUnauthorized: false });
      await once(socket, 'secureConnect');
      return socket;
    };
    return {
      backend,
      redis: standalone,
      pauseRedis: () => frozen.pause(),
      resumeRedis: () => frozen.resume(),
      instances: instances as [Instance, Instance],
      haproxy,
      async imap() {
        const socket = await open(haproxy.ports.imap!);
        const t = Object.assign(ImapTranscript.wrap(socket), { clientIp: socket.localAddress! });
        await t.until(/^\* OK/);
        return t;
      },
      async smtp() {
        const socket = await open(haproxy.ports.smtp!);
        const t = Object.assign(SmtpTranscript.wrap(socket), { clientIp: socket.localAddress! });
        await t.expect(/^220 /);
        return t;
      },
      close: closeAll,
    };
  } catch (error) {
    await closeAll();
    throw error;
  }
}

async function startInstance(name: string, peers: Peers, tree: Record<string, unknown>): Promise<Instance> {
  const tc = makeTestConfig({
    auth: { failure_delay_ms: 50, failure_delay_jitter_ms: 0 },
    oauth: oauthSection(peers.oauth),
    ops: { enabled: false },
    smtp: {
      hostname: `passgate-${name}.test`,
      listeners: [behindHaproxy],
      upstream: { host: '127.0.0.1', port: peers.upstream.port, tls: 'starttls', ca_file: peers.caFile, servername: 'localhost', wait_seconds: 10 },
    },
    imap: {
      listeners: [behindHaproxy],
      upstream: { host: '127.0.0.1', port: peers.dovecot.imapsPort, tls: 'implicit', ca_file: peers.caFile, servername: 'localhost' },
      ...(tree.imap as object | undefined),
    },
    ...Object.fromEntries(Object.entries(tree).filter(([key]) => key !== 'imap')),
  });
  let hasher: CountingHasher | undefined;
  const app = await openApp(tc.config, { logger: createLogger('silent'), decorateHasher: (inner) => (hasher = new CountingHasher(inner)) });
  let services: Services;
  try {
    services = await startServices(app);
  } catch (error) {
    await app.close();
    tc.cleanup();
    throw error;
  }
  let closing: Promise<void> | undefined;
  return {
    name,
    tc,
    app,
    services,
    hasher: hasher!,
    get liveSessions() {
      return services.imap!.registry.size;
    },
    close() {
      closing ??= (async () => {
        await services.close(0);
        await app.close();
        tc.cleanup();
      })();
      return closing;
    },
  };
}
