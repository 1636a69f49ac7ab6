import assert from 'node:assert/strict';
import { execFile, execFileSync, spawn, type ChildProcess } from 'node:child_process';
import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { openApp } from '../../src/app.js';
import { createLogger } from '../../src/observability/logger.js';
import { generateSelfSignedCertificate } from '../../src/tls/self-signed-certificate.js';
import { promisify } from 'node:util';
import type { Cluster } from 'ioredis';
import { configSchema } from '../../src/config/config-schema.js';
import { createRedisClient, waitForRedisReady } from '../../src/redis/redis-client-factory.js';
import { RedisCredentialStore } from '../../src/credentials/redis-credential-store.js';
import { redisFailureHint } from '../../src/doctor/redis-check.js';
import { makeRecord } from '../helpers/records.js';
import { freePort, killAll, startRedis, waitUntil, type TestRedis } from '../helpers/redis-server.js';
import { runCli } from '../helpers/run-cli.js';
import { makeTestConfig, type TestConfig } from '../helpers/test-config.js';
import { CLI_ACTOR } from '../../src/core/actor.js';
import { skipWithout } from '../helpers/required-tool.js';

const USER = 'passgate-app';
const PASSWORD = 'acl-pw-5f8e1c2a';

interface Check {
  name: string;
  status: string;
  detail: string;
  hint?: string;
}

/**
 * A managed-Redis setup on loopback: a redis-server listening with TLS only, whose default user is off and whose
 * one ACL user has a password. passgate's store must work through redis.username / redis.password / redis.ca_file,
 * and doctor must name what is wrong when one of them is.
 */
describe('Redis over TLS with an ACL user (standalone)', () => {
  let redis: TestRedis;
  let dir: string;
  let port: string;
  const configs: TestConfig[] = [];

  before(async () => {
    dir = mkdtempSync(join(tmpdir(), 'passgate-redis-tls-'));
    const server = await generateSelfSignedCertificate({ commonName: 'redis.test', dnsNames: ['redis.test', 'localhost'], ipAddresses: ['127.0.0.1'] });
    const other = await generateSelfSignedCertificate({ commonName: 'someone-else.test', dnsNames: ['someone-else.test'] });
    writeFileSync(join(dir, 'redis.crt'), server.cert);
    writeFileSync(join(dir, 'redis.key'), server.key);
    writeFileSync(join(dir, 'other-ca.pem'), other.cert);
    redis = await startRedis({
      own: true,
      tls: { certFile: join(dir, 'redis.crt'), keyFile: join(dir, 'redis.key'), caFile: join(dir, 'redis.crt') },
      // redis-server quotes each argument on its own: one --user line is several arguments.
      args: ['--user', 'default', 'off', '--user', USER, 'on', `>${PASSWORD}`, '~*', '&*', '+@all'],
    });
    port = new URL(redis.url).port;
  });

  after(async () => {
    for (const tc of configs) tc.cleanup();
    await redis?.close();
    if (dir) rmSync(dir, { recursive: true, force: true });
  });

  function config(over: Record<string, unknown>): TestConfig {
    const tc = makeTestConfig({
      redis: { url: redis.url, key_prefix: redis.prefix, command_timeout_ms: 2000, ca_file: join(dir, 'redis.crt'), ...over },
      smtp: { enabled: false },
      imap: { enabled: false },
      ops: { enabled: false },
    });
    configs.push(tc);
    return tc;
  }

  async function doctorRedis(tc: TestConfig): Promise<{ code: number; check: Check; output: string }> {
    const result = await runCli(['--config', tc.file, 'doctor', '--json'], { cwd: tc.dir });
    const report = JSON.parse(result.stdout) as { checks: Check[] };
    const check = report.checks.find((c) => c.name === 'redis');
    assert.ok(check, result.stdout);
    return { code: result.code, check, output: result.stdout + result.stderr };
  }

  it('the credential store works over TLS as the ACL user: an app password created is verified', async () => {
    const tc = config({ username: USER, password: PASSWORD });
    const app = await openApp(tc.config, { logger: createLogger('silent') });
    try {
      const { password } = await app.admin.appPasswords.create(CLI_ACTOR, { username: 'tls@example.com', name: 'Laptop' });
      const login = await app.authenticator.authenticate({ protocol: 'imap', clientIp: '198.51.100.7', secure: true, username: 'tls@example.com', password });
      assert.equal(login.ok, true);
      assert.equal((await app.audit.query({ username: 'tls@example.com', limit: 5 }))[0]!.reason, 'ok');
    } finally {
      await app.close();
    }
  });

  it('a user in the url with the password in redis.password logs in (ioredis alone sends an empty password)', async () => {
    const { code, check } = await doctorRedis(config({ url: `rediss://${USER}@127.0.0.1:${port}`, password: PASSWORD }));
    assert.equal(check.status, 'pass', check.detail);
    assert.match(check.detail, /^answers PING \(Redis \d/);
    assert.notEqual(code, 2, 'a user in the url with redis.password is a valid config (2: a config error)');
  });

  it('doctor: a wrong password is refused by name, and the password is never printed', async () => {
    const wrong = 'not-the-acl-password';
    const { code, check, output } = await doctorRedis(config({ username: USER, password: wrong }));
    assert.equal(code, 1);
    assert.equal(check.status, 'fail');
    assert.match(check.detail, /^no answer from Redis: WRONGPASS invalid username-password pair/);
    assert.match(check.hint!, /check redis\.username and redis\.password/);
    assert.ok(!output.includes(wrong) && !output.includes(PASSWORD), 'a password was printed');
  });

  it('doctor: no user and password at all, Redis asks for them', async () => {
    const { check } = await doctorRedis(config({}));
    assert.equal(check.status, 'fail');
    assert.match(check.detail, /NOAUTH|WRONGPASS/);
    assert.match(check.hint!, /redis\.password/);
  });

  it('doctor: a certificate signed by another CA is refused, naming redis.ca_file', async () => {
    const { code, check } = await doctorRedis(config({ username: USER, password: PASSWORD, ca_file: join(dir, 'other-ca.pem') }));
    assert.equal(code, 1);
    assert.equal(check.status, 'fail');
    assert.match(check.detail, /^no answer from Redis: .*(self[- ]signed certificate|unable to verify)/);
    assert.match(check.hint!, /set redis\.ca_file to the CA bundle that signed it/);
  });

  it('doctor: a certificate for another name is refused; redis.servername names the one it carries', async () => {
    const mismatch = await doctorRedis(config({ username: USER, password: PASSWORD, servername: 'wrong.test' }));
    assert.equal(mismatch.check.status, 'fail');
    assert.match(mismatch.check.detail, /wrong\.test.*altnames|altnames.*wrong\.test/);
    assert.match(mismatch.check.hint!, /redis\.servername/);
    const named = await doctorRedis(config({ username: USER, password: PASSWORD, servername: 'redis.test' }));
    assert.equal(named.check.status, 'pass', named.check.detail);
  });

  it('the server process: a wrong password is logged by name, never the password', async () => {
    const wrong = 'also-not-the-password';
    const lines: string[] = [];
    const tc = config({ username: USER, password: wrong, command_timeout_ms: 300 });
    const logger = createLogger('warn', { write: (line: string) => void lines.push(line) });
    const app = await openApp(tc.config, { logger });
    try {
      await assert.rejects(app.store.get('no-such-id'));
    } finally {
      await app.close();
    }
    const text = lines.join('');
    assert.match(text, /WRONGPASS/);
    assert.ok(!text.includes(wrong), 'the password was logged');
  });
});

/**
 * A three-master Redis Cluster on 127.0.0.1 speaking only TLS, to clients and on the cluster bus, with the same
 * ACL user on every node: the nodes a client discovers (CLUSTER SLOTS) must get the same TLS and credentials as the
 * seed.
 */
async function startTlsCluster(tls: { certFile: string; keyFile: string; caFile: string }, dir: string): Promise<{ nodes: string[]; close(): Promise<void> }> {
  const run = promisify(execFile);
  const cli = (port: number, ...args: string[]) =>
    run('redis-cli', ['--tls', '--cacert', tls.caFile, '--user', USER, '--pass', PASSWORD, '--no-auth-warning', '-h', '127.0.0.1', '-p', String(port), ...args], { timeout: 15_000 }).then((r) => r.stdout);
  const children: ChildProcess[] = [];
  const ports: number[] = [];
  const close = async () => {
    await killAll(children);
  };
  try {
    for (let i = 0; i < 3; i++) {
      const port = await freePort();
      const nodeDir = join(dir, `node-${i}`);
      mkdirSync(nodeDir);
      const child = spawn(
        'redis-server',
        [
          '--port', '0', '--tls-port', String(port), '--bind', '127.0.0.1',
          '--tls-cert-file', tls.certFile, '--tls-key-file', tls.keyFile, '--tls-ca-cert-file', tls.caFile,
          '--tls-auth-clients', 'no', '--tls-cluster', 'yes',
          '--cluster-enabled', 'yes', '--cluster-port', String(await freePort()), '--cluster-config-file', join(nodeDir, 'nodes.conf'),
          '--cluster-node-timeout', '5000', '--dir', nodeDir, '--save', '', '--appendonly', 'no', '--maxmemory-policy', 'noeviction',
          '--user', 'default', 'off', '--user', USER, 'on', `>${PASSWORD}`, '~*', '&*', '+@all',
        ],
        { stdio: 'ignore' },
      );
      child.once('error', () => {});
      children.push(child);
      ports.push(port);
    }
    for (const port of ports) await waitUntil('tls cluster', `node ${port} answering`, async () => (await cli(port, 'PING')).trim() === 'PONG');
    await cli(ports[0]!, '--cluster', 'create', ...ports.map((p) => `127.0.0.1:${p}`), '--cluster-replicas', '0', '--cluster-yes');
    for (const port of ports) {
      await waitUntil('tls cluster', `cluster_state:ok on ${port}`, async () => (await cli(port, 'CLUSTER', 'INFO')).includes('cluster_state:ok'));
    }
  } catch (error) {
    await close();
    throw error;
  }
  return { nodes: ports.map((p) => `127.0.0.1:${p}`), close };
}

describe('Redis Cluster over TLS with an ACL user', { skip: skipWithout('openssl', ['version'], 'cannot make the nodes\' certificate') }, () => {
  let dir: string;
  let cluster: { nodes: string[]; close(): Promise<void> } | undefined;

  before(async () => {
    dir = mkdtempSync(join(tmpdir(), 'passgate-redis-tls-cluster-'));
    // The nodes present this certificate to each other on the cluster bus, as clients too: passgate's self-signed
    // generator marks certificates for servers only (serverAuth), which the bus refuses; openssl sets no usage.
    execFileSync('openssl', ['req', '-x509', '-newkey', 'ec', '-pkeyopt', 'ec_paramgen_curve:P-256', '-nodes', '-days', '1', '-subj', '/CN=redis.test',
      '-addext', 'subjectAltName=IP:127.0.0.1,DNS:redis.test', '-keyout', join(dir, 'redis.key'), '-out', join(dir, 'redis.crt')], { stdio: 'ignore' });
    cluster = await startTlsCluster({ certFile: join(dir, 'redis.crt'), keyFile: join(dir, 'redis.key'), caFile: join(dir, 'redis.crt') }, dir);
  });

  after(async () => {
    await cluster?.close();
    if (dir) rmSync(dir, { recursive: true, force: true });
  });

  it('stores and reads app passwords on every master through redis.tls, ca_file, username and password', async () => {
    const redis = configSchema.parse({
      redis: { cluster_nodes: cluster!.nodes.slice(0, 1), tls: true, ca_file: join(dir, 'redis.crt'), username: USER, password: PASSWORD },
    }).redis;
    const client = createRedisClient(redis, 'passgate-test');
    client.on('error', () => {});
    try {
      assert.ok(await waitForRedisReady(client, 10_000), 'cluster client ready');
      const store = new RedisCredentialStore(client, 'pgtest-tls:');
      // Users hash to different slots, so the three masters (two of them discovered, not seeded) are all written.
      const users = Array.from({ length: 12 }, (_, i) => `user${i}@example.com`);
      for (const username of users) {
        const result = await store.insert(makeRecord({ username }), { maxActivePerUser: 10, now: Date.now() });
        assert.equal(result.ok, true, JSON.stringify(result));
      }
      assert.equal((await store.list()).filter((r) => users.includes(r.username)).length, users.length);
      const masters = (client as Cluster).nodes('master');
      assert.equal(masters.length, 3);
      for (const node of masters) assert.ok((await node.dbsize()) > 0, `master ${node.options.port} holds keys`);
    } finally {
      client.disconnect();
    }
  });
});

const SENTINEL_USER = 'passgate-watcher';
const SENTINEL_PASSWORD = 'sentinel-pw-9d3b';

/**
 * A master and one sentinel on 127.0.0.1, both TLS only: the master with the ACL user, the sentinel with its own
 * ACL user and password (and the master's, to watch it over TLS).
 */
async function startTlsSentinel(tls: { certFile: string; keyFile: string; caFile: string }, dir: string): Promise<{ sentinels: { host: string; port: number }[]; name: string; close(): Promise<void> }> {
  const run = promisify(execFile);
  const children: ChildProcess[] = [];
  const name = 'passgate-tls';
  const close = async () => {
    await killAll(children);
  };
  const tlsArgs = ['--tls-cert-file', tls.certFile, '--tls-key-file', tls.keyFile, '--tls-ca-cert-file', tls.caFile, '--tls-auth-clients', 'no'];
  try {
    const [master, sentinel] = [await freePort(), await freePort()];
    const child = spawn('redis-server', ['--port', '0', '--tls-port', String(master), '--bind', '127.0.0.1', ...tlsArgs, '--dir', dir, '--save', '', '--appendonly', 'no',
      '--user', 'default', 'off', '--user', USER, 'on', `>${PASSWORD}`, '~*', '&*', '+@all'], { stdio: 'ignore' });
    child.once('error', () => {});
    children.push(child);
    const conf = join(dir, 'sentinel.conf');
    writeFileSync(
      conf,
      [
        'port 0',
        `tls-port ${sentinel}`,
        `tls-cert-file ${tls.certFile}`,
        `tls-key-file ${tls.keyFile}`,
        `tls-ca-cert-file ${tls.caFile}`,
        'tls-auth-clients no',
        'tls-replication yes',
        'bind 127.0.0.1',
        `dir ${dir}`,
        'user default off',
        `user ${SENTINEL_USER} on >${SENTINEL_PASSWORD} allchannels +@all`,
        `sentinel monitor ${name} 127.0.0.1 ${master} 1`,
        `sentinel auth-user ${name} ${USER}`,
        `sentinel auth-pass ${name} ${PASSWORD}`,
        '',
      ].join('\n'),
    );
    const watcher = spawn('redis-server', [conf, '--sentinel'], { stdio: 'ignore' });
    watcher.once('error', () => {});
    children.push(watcher);
    const cli = (...args: string[]) =>
      run('redis-cli', ['--tls', '--cacert', tls.caFile, '--user', SENTINEL_USER, '--pass', SENTINEL_PASSWORD, '--no-auth-warning', '-h', '127.0.0.1', '-p', String(sentinel), ...args], { timeout: 15_000 }).then((r) => r.stdout);
    await waitUntil('tls sentinel', 'sentinel sees the master up', async () => /\bflags\s+master\s/.test((await cli('SENTINEL', 'master', name)).replace(/\n/g, ' ')));
    return { sentinels: [{ host: '127.0.0.1', port: sentinel }], name, close };
  } catch (error) {
    await close();
    throw error;
  }
}

describe('Redis Sentinel over TLS, ACL users on the master and on the sentinel', () => {
  let dir: string;
  let deployment: Awaited<ReturnType<typeof startTlsSentinel>> | undefined;

  before(async () => {
    dir = mkdtempSync(join(tmpdir(), 'passgate-redis-tls-sentinel-'));
    const server = await generateSelfSignedCertificate({ commonName: 'redis.test', dnsNames: ['redis.test'], ipAddresses: ['127.0.0.1'] });
    writeFileSync(join(dir, 'redis.crt'), server.cert);
    writeFileSync(join(dir, 'redis.key'), server.key);
    deployment = await startTlsSentinel({ certFile: join(dir, 'redis.crt'), keyFile: join(dir, 'redis.key'), caFile: join(dir, 'redis.crt') }, dir);
  });

  after(async () => {
    await deployment?.close();
    if (dir) rmSync(dir, { recursive: true, force: true });
  });

  const sentinelConfig = (over: Record<string, unknown>) =>
    configSchema.parse({
      redis: {
        sentinels: deployment!.sentinels,
        sentinel_name: deployment!.name,
        tls: true,
        ca_file: join(dir, 'redis.crt'),
        username: USER,
        password: PASSWORD,
        sentinel_username: SENTINEL_USER,
        sentinel_password: SENTINEL_PASSWORD,
        command_timeout_ms: 2000,
        ...over,
      },
    }).redis;

  it('stores and reads an app password through the sentinel, every connection over TLS as its user', async () => {
    const client = createRedisClient(sentinelConfig({}), 'passgate-test');
    client.on('error', () => {});
    try {
      assert.ok(await waitForRedisReady(client, 10_000), 'sentinel client ready');
      const store = new RedisCredentialStore(client, 'pgtest-tls-sentinel:');
      const record = makeRecord({ username: 'sentinel@example.com' });
      assert.deepEqual(await store.insert(record, { maxActivePerUser: 10, now: Date.now() }), { ok: true });
      assert.equal((await store.get(record.id))?.username, 'sentinel@example.com');
    } finally {
      client.disconnect();
    }
  });

  it('without the sentinel password the sentinel refuses, and the client never gets ready', async () => {
    const client = createRedisClient(sentinelConfig({ sentinel_password: 'wrong-sentinel-pw' }), 'passgate-test');
    const errors: string[] = [];
    client.on('error', (error: Error) => errors.push(error.message));
    try {
      assert.equal(await waitForRedisReady(client, 2000), false);
      assert.ok(errors.some((e) => /All sentinels are unreachable.*Last error: WRONGPASS/.test(e)), errors.join('; '));
      assert.match(redisFailureHint(errors.at(-1)!), /redis\.sentinel_username and redis\.sentinel_password/);
    } finally {
      client.disconnect();
    }
  });
});
