import assert from 'node:assert/strict';
import { chmodSync, existsSync, mkdtempSync, readFileSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { after, describe, it } from 'node:test';
import { parse } from 'yaml';
import { loadConfig } from '../../../src/config/config-loader.js';
import { transportFor } from '../../../src/config/config-schema.js';

const dirs: string[] = [];
function tempDir(): string {
  const dir = mkdtempSync(join(tmpdir(), 'passgate-config-'));
  dirs.push(dir);
  return dir;
}
after(() => dirs.forEach((d) => rmSync(d, { recursive: true, force: true })));

function load(yaml: string, env: Record<string, string> = {}) {
  const dir = tempDir();
  writeFileSync(join(dir, 'passgate.yaml'), yaml);
  return loadConfig({ path: 'passgate.yaml', env, cwd: dir });
}

const failsWith = (fn: () => unknown, pattern: RegExp) =>
  assert.throws(fn, (error: Error & { code?: string }) => {
    assert.equal(error.code, 'PG_CONFIG_INVALID');
    assert.match(error.message, pattern);
    return true;
  });

function leafPaths(value: unknown, prefix = ''): string[] {
  if (value === null || typeof value !== 'object' || Array.isArray(value)) return [prefix];
  return Object.entries(value).flatMap(([k, v]) => leafPaths(v, prefix ? `${prefix}.${k}` : k));
}

describe('config loader', () => {
  const examplePath = resolve(import.meta.dirname, '../../../config/passgate.example.yaml');

  it('parses the example file, whose values are the defaults, and which documents every key', () => {
    const cwd = tempDir();
    const { config: example } = loadConfig({ path: examplePath, env: { PASSGATE_DATA_DIR: cwd }, cwd });
    const { config: defaults } = loadConfig({ env: { PASSGATE_DATA_DIR: cwd }, cwd });
    assert.deepEqual({ ...example, source: '' }, { ...defaults, source: '' });
    const documented = new Set(leafPaths(parse(readFileSync(examplePath, 'utf8'))));
    const text = readFileSync(examplePath, 'utf8');
    const { redisEnabled: _r, source: _s, ...schemaTree } = defaults;
    for (const path of leafPaths(schemaTree)) {
      const key = path.split('.').pop()!;
      // Secrets are documented as comments (they have no default value to show).
      assert.ok(documented.has(path) || new RegExp(`#\\s*${key}:`).test(text), `example does not document ${path}`);
    }
  });

  it('uses OWASP argon2id parameters and 16-letter passwords by default', () => {
    const { config } = load('data_dir: data\n');
    assert.deepEqual(config.security.argon2, { memory_kib: 19456, time_cost: 2, parallelism: 1 });
    assert.equal(config.app_passwords.length, 16);
    assert.equal(config.app_passwords.max_per_user, 10);
    assert.equal(config.audit.retention_days, 30);
  });

  it('names the path of an unknown key', () => {
    failsWith(() => load('redis:\n  urll: redis://x\n'), /redis\.urll: unknown key/);
    failsWith(() => load('nonsense: 1\n'), /nonsense: unknown key/);
  });

  it('names the path of a wrong type or value', () => {
    failsWith(() => load('security:\n  argon2:\n    time_cost: "two"\n'), /security\.argon2\.time_cost: /);
    failsWith(() => load('app_passwords:\n  length: 10\n  min_length: 12\n'), /app_passwords\.length: must be at least min_length/);
    failsWith(() => load('redis:\n  url: not a url\n'), /redis\.url: /);
    failsWith(() => load('log:\n  level: loud\n'), /log\.level: /);
  });

  it('says when the file is missing or not YAML, without quoting the line (it may hold a secret)', () => {
    assert.throws(() => loadConfig({ path: '/nonexistent/passgate.yaml', env: {}, cwd: '/' }), /cannot read configuration file/);
    failsWith(() => load('a: [1, 2\n'), /not valid YAML at line \d+, column \d+/);
    assert.throws(
      () => load('security:\n  pepper: S3cretPepperValue123: oops\n'),
      (error: Error) => !error.message.includes('S3cretPepperValue123') && /not valid YAML at line 2/.test(error.message),
    );
  });

  it('names a trusted network that is not a CIDR', () => {
    failsWith(() => load('rate_limit:\n  trusted_networks: [10.0.0.0/8, 10.0.0.0/99]\n'), /rate_limit\.trusted_networks\.1: expected an address or CIDR/);
  });

  it('applies PASSGATE_ environment overrides, levels joined by __, values as YAML scalars', () => {
    const { config } = load('log:\n  level: info\n', {
      PASSGATE_LOG__LEVEL: 'debug',
      PASSGATE_APP_PASSWORDS__MAX_PER_USER: '3',
      PASSGATE_RATE_LIMIT__TRUSTED_NETWORKS: '[10.0.0.0/8, 192.168.0.0/16]',
    });
    assert.equal(config.log.level, 'debug');
    assert.equal(config.app_passwords.max_per_user, 3);
    assert.deepEqual(config.rate_limit.trusted_networks, ['10.0.0.0/8', '192.168.0.0/16']);
    failsWith(() => load('', { PASSGATE_REDIS__URLL: 'x' }), /redis\.urll: unknown key \(from PASSGATE_REDIS__URLL\)/);
  });

  it('reads secrets from *_file paths and from the environment, as strings', () => {
    const dir = tempDir();
    writeFileSync(join(dir, 'pepper.txt'), 'file-pepper-0123456789abcdef\n');
    writeFileSync(join(dir, 'passgate.yaml'), 'security:\n  pepper_file: pepper.txt\n');
    const fromFile = loadConfig({ path: join(dir, 'passgate.yaml'), env: {}, cwd: '/' });
    assert.equal(fromFile.config.security.pepper, 'file-pepper-0123456789abcdef');
    const fromEnv = load('', { PASSGATE_SECURITY__PEPPER: '12345678901234567890' });
    assert.equal(fromEnv.config.security.pepper, '12345678901234567890');
    const fromEnvFile = loadConfig({ env: { PASSGATE_SECURITY__PEPPER_FILE: join(dir, 'pepper.txt') }, cwd: dir });
    assert.equal(fromEnvFile.config.security.pepper, 'file-pepper-0123456789abcdef');
  });

  it('names the secret key when its file is unreadable, doubled, or the secret is missing or weak', () => {
    failsWith(() => load('security:\n  pepper_file: /nonexistent/pepper\n'), /security\.pepper_file: cannot read \/nonexistent\/pepper: ENOENT/);
    failsWith(() => load('security:\n  pepper: aaaaaaaaaaaaaaaaaaaa\n  pepper_file: x\n'), /security\.pepper: set either security\.pepper or security\.pepper_file/);
    failsWith(() => load('security:\n  pepper: short\n'), /security\.pepper: must be at least 16 characters/);
    failsWith(() => load('redis:\n  url: redis://127.0.0.1:6379\n'), /security\.pepper: required when redis is configured/);
  });

  it('refuses a damaged pepper file and warns about a readable one', () => {
    const first = load('data_dir: state\n');
    const file = join(first.config.data_dir, 'pepper');
    writeFileSync(file, 'short\n');
    failsWith(() => loadConfig({ path: first.config.source, env: {}, cwd: '/' }), /security\.pepper_file: .* fewer than 16 characters/);
    writeFileSync(file, 'a-long-enough-pepper-value\n', { mode: 0o644 });
    chmodSync(file, 0o644);
    assert.match(loadConfig({ path: first.config.source, env: {}, cwd: '/' }).warnings.join('\n'), /readable by other users/);
  });

  it('generates a private pepper into data_dir on the embedded store, once', () => {
    const first = load('data_dir: state\n');
    const file = join(first.config.data_dir, 'pepper');
    assert.match(first.warnings.join('\n'), /generated a new pepper/);
    assert.equal(statSync(file).mode & 0o777, 0o600);
    const again = loadConfig({ path: first.config.source, env: {}, cwd: '/' });
    assert.equal(again.config.security.pepper, first.config.security.pepper);
    assert.deepEqual(again.warnings, []);
  });

  it('createPepper: false (doctor) leaves a fresh install untouched and says serve will create the pepper', () => {
    const dir = tempDir();
    writeFileSync(join(dir, 'passgate.yaml'), 'data_dir: state\n');
    const checked = loadConfig({ path: join(dir, 'passgate.yaml'), env: {}, cwd: dir, createPepper: false });
    assert.match(checked.warnings.join('\n'), /no pepper at .*state\/pepper yet: passgate serve creates it on first start/);
    assert.equal(existsSync(join(dir, 'state')), false, 'nothing written');
    // Once serve made it, the check reads it like serve does, without a warning.
    const served = loadConfig({ path: join(dir, 'passgate.yaml'), env: {}, cwd: dir });
    const again = loadConfig({ path: join(dir, 'passgate.yaml'), env: {}, cwd: dir, createPepper: false });
    assert.equal(again.config.security.pepper, served.config.security.pepper);
    assert.deepEqual(again.warnings, []);
  });

  it('resolves data_dir against the config file and the sqlite path against data_dir', () => {
    const { config } = load('data_dir: state\nsqlite:\n  path: x.db\nsecurity:\n  pepper: aaaaaaaaaaaaaaaaaaaa\n');
    assert.ok(config.data_dir.endsWith('/state'));
    assert.equal(config.sqlite.path, join(config.data_dir, 'x.db'));
    assert.equal(config.redisEnabled, false);
  });

  it('reads the Redis TLS and ACL keys: ca_file against the config file, passwords from *_file or the environment as strings', () => {
    const dir = tempDir();
    writeFileSync(join(dir, 'sentinel-pw.txt'), 'sentinel-secret\n');
    writeFileSync(join(dir, 'redis-ca.pem'), 'a CA bundle\n');
    const yaml =
      'security:\n  pepper: aaaaaaaaaaaaaaaaaaaa\nredis:\n  sentinels: [{host: 10.0.0.11, port: 26379}]\n  username: app\n  tls: true\n' +
      '  ca_file: redis-ca.pem\n  servername: redis.internal\n  sentinel_username: watcher\n  sentinel_password_file: sentinel-pw.txt\n';
    writeFileSync(join(dir, 'passgate.yaml'), yaml);
    const { config } = loadConfig({ path: 'passgate.yaml', env: { PASSGATE_REDIS__PASSWORD: '0123', PASSGATE_REDIS__USERNAME: 'from-env' }, cwd: dir });
    assert.equal(config.redis.ca_file, join(dir, 'redis-ca.pem'));
    assert.equal(config.redis.password, '0123', 'a secret stays a string, not the number 123');
    assert.equal(config.redis.username, 'from-env');
    assert.equal(config.redis.sentinel_password, 'sentinel-secret');
    assert.equal(config.redis.sentinel_username, 'watcher');
    failsWith(
      () => load('security:\n  pepper: aaaaaaaaaaaaaaaaaaaa\nredis:\n  url: redis://h:6379\n  ca_file: ca.pem\n'),
      /redis\.ca_file: only with TLS: set redis\.tls: true \(or use a rediss:\/\/ url\)/,
    );
    failsWith(() => load('redis:\n  tls: yes please\n'), /redis\.tls: /);
  });

  it('refuses a tenant that is neither a GUID nor a domain, naming the key', () => {
    for (const tenant of ['contoso.onmicrosoft.com', 'Contoso.com', '72f988bf-86f1-41af-91ab-2d7cd011db47']) {
      assert.equal(load(`oauth:\n  tenant: ${tenant}\n`).config.oauth.tenant, tenant);
    }
    for (const tenant of ['contoso', 'https://login.microsoftonline.com/contoso.com', 'contoso .com', '72f988bf-86f1-41af-91ab', 'common']) {
      failsWith(() => load(`oauth:\n  tenant: "${tenant}"\n`), /oauth\.tenant: must be the tenant id \(a GUID .*\) or a domain such as contoso\.onmicrosoft\.com/);
    }
    failsWith(() => load('', { PASSGATE_OAUTH__TENANT: 'contoso' }), /oauth\.tenant: .* \(from PASSGATE_OAUTH__TENANT\)/);
  });

  it('refuses a CA, certificate or key file that serve would read and cannot, naming the key; a file of a part that is off is not read', () => {
    failsWith(() => load('smtp:\n  upstream:\n    ca_file: missing-ca.pem\n'), /smtp\.upstream\.ca_file: cannot read \/.*\/missing-ca\.pem: ENOENT/);
    failsWith(() => load('imap:\n  upstream:\n    ca_file: missing-ca.pem\n'), /imap\.upstream\.ca_file: cannot read .*ENOENT/);
    failsWith(
      () => load('oauth:\n  client_id: x\n  certificate_file: cert.pem\n  private_key_file: key.pem\n'),
      /oauth\.certificate_file: cannot read .*ENOENT\n {2}- oauth\.private_key_file: cannot read .*ENOENT/,
    );
    assert.equal(load('smtp:\n  enabled: false\n  upstream:\n    ca_file: missing-ca.pem\n').config.smtp.enabled, false);
  });

  it('issue 20: the transport, per domain; Graph over https (http on loopback only); the From check on with Graph', () => {
    const base = 'data_dir: data\n';
    assert.equal(load(base).config.smtp.upstream.transport, 'smtp');
    assert.equal(load(base).config.smtp.check_from_header, false, 'off for the SMTP transport');
    const graph = load(`${base}smtp:\n  upstream:\n    transport: graph\n`).config;
    assert.equal(graph.smtp.check_from_header, true, 'on by default once Graph carries mail');
    assert.equal(graph.smtp.upstream.graph.base_url, 'https://graph.microsoft.com/v1.0');
    assert.equal(load(`${base}smtp:\n  check_from_header: false\n  upstream:\n    transport_by_domain: {contoso.com: graph}\n`).config.smtp.check_from_header, false, 'an explicit false stands');
    assert.equal(load(`${base}smtp:\n  upstream:\n    transport_by_domain: {contoso.com: graph}\n`).config.smtp.check_from_header, true);
    assert.equal(load(`${base}smtp:\n  upstream:\n    graph: {base_url: "http://127.0.0.1:8080/v1.0"}\n`).config.smtp.upstream.graph.base_url, 'http://127.0.0.1:8080/v1.0');
    failsWith(() => load(`${base}smtp:\n  upstream:\n    graph: {base_url: "http://graph.example.com/v1.0"}\n`), /smtp\.upstream\.graph\.base_url: .*plain http:\/\/ only on loopback/);
    failsWith(() => load(`${base}smtp:\n  upstream:\n    transport: ews\n`), /smtp\.upstream\.transport/);
    failsWith(() => load(`${base}smtp:\n  upstream:\n    graph: {max_concurrent_requests_per_mailbox: 5}\n`), /smtp\.upstream\.graph\.max_concurrent_requests_per_mailbox/);
  });
});

describe('transportFor', () => {
  it('takes the domain entry (any case), else the global transport', () => {
    const upstream = { transport: 'smtp' as const, transport_by_domain: { 'Contoso.com': 'graph' as const } };
    assert.equal(transportFor(upstream, 'scanner@contoso.COM'), 'graph');
    assert.equal(transportFor(upstream, 'scanner@fabrikam.com'), 'smtp');
    assert.equal(transportFor({ transport: 'graph', transport_by_domain: {} }, 'a@b.c'), 'graph');
  });
});
