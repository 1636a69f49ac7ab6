import assert from 'node:assert/strict';
import { chmodSync, mkdtempSync, rmSync, unlinkSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import Database from 'better-sqlite3';
import { stringify } from 'yaml';
import { openApp } from '../../src/app.js';
import { loadConfig } from '../../src/config/config-loader.js';
import { createLogger } from '../../src/observability/logger.js';
import { startRedis, type TestRedis } from '../helpers/redis-server.js';
import { runCli } from '../helpers/run-cli.js';
import { FAST_ARGON2 } from '../helpers/test-config.js';

/**
 * Issue 17: a lost pepper is a stop, not a silent reset. The store records a check value of the pepper it was
 * written with (never the pepper); serve, the CLI and doctor refuse another pepper, naming the key and the file.
 */
describe('the store knows its pepper', () => {
  let dir: string;
  before(() => {
    dir = mkdtempSync(join(tmpdir(), 'passgate-pepper-'));
  });
  after(() => rmSync(dir, { recursive: true, force: true }));

  /** A config in a fresh folder: the embedded store, and the pepper generated into data/pepper unless given. */
  function folder(name: string, pepper?: string): string {
    const path = join(dir, name);
    rmSync(path, { recursive: true, force: true });
    const file = join(dir, `${name}.yaml`);
    writeFileSync(
      file,
      stringify({ log: { level: 'silent' }, data_dir: path, security: { argon2: FAST_ARGON2, ...(pepper ? { pepper } : {}) }, ops: { enabled: false } }),
      { mode: 0o600 },
    );
    return file;
  }
  const cli = (file: string, ...args: string[]) => runCli(['--config', file, ...args], { cwd: dir });
  const create = (file: string) => cli(file, 'app-password', 'create', '--user', 'scanner@example.com', '--name', 'Scanner');

  it('data/pepper lost: serve, the CLI and doctor stop and name the pepper file; no new pepper is generated', async () => {
    const file = folder('lost');
    assert.equal((await create(file)).code, 0);
    unlinkSync(join(dir, 'lost', 'pepper'));
    for (const args of [['serve'], ['app-password', 'list'], ['doctor']]) {
      const result = await cli(file, ...args);
      assert.notEqual(result.code, 0, `${args.join(' ')} must not run`);
      assert.match(result.stderr + result.stdout, /security\.pepper_file: no pepper at .*lost\/pepper, but the store .*passgate\.db exists/, args.join(' '));
    }
  });

  it('another pepper configured: serve, the CLI and doctor refuse it, naming security.pepper', async () => {
    const file = folder('changed', 'the-first-pepper-0123456789');
    assert.equal((await create(file)).code, 0);
    const other = folder('changed-other', 'another-pepper-0123456789');
    // The same store, another pepper.
    writeFileSync(other, stringify({ log: { level: 'silent' }, data_dir: join(dir, 'changed'), security: { argon2: FAST_ARGON2, pepper: 'another-pepper-0123456789' }, ops: { enabled: false } }), { mode: 0o600 });
    for (const args of [['serve'], ['app-password', 'list'], ['doctor']]) {
      const result = await cli(other, ...args);
      assert.notEqual(result.code, 0, `${args.join(' ')} must not run`);
      assert.match(result.stderr + result.stdout, /security\.pepper: this store was written with another pepper/, args.join(' '));
    }
    assert.equal((await cli(file, 'app-password', 'list')).code, 0, 'the right pepper still works');
  });

  it('a store from before the check adopts the current pepper, then refuses any other', async () => {
    const file = folder('legacy', 'the-legacy-pepper-0123456789');
    assert.equal((await create(file)).code, 0);
    const db = new Database(join(dir, 'legacy', 'passgate.db'));
    db.prepare('DELETE FROM meta').run();
    db.close();
    const logs: string[] = [];
    const logger = createLogger('info', { write: (line: string) => void logs.push(line) });
    const app = await openApp(loadConfig({ path: file, env: {}, cwd: dir }).config, { logger });
    await app.close();
    assert.ok(logs.some((l) => l.includes('the existing store adopted the current pepper')), logs.join(''));
    writeFileSync(file, stringify({ log: { level: 'silent' }, data_dir: join(dir, 'legacy'), security: { argon2: FAST_ARGON2, pepper: 'not-the-legacy-pepper-0123' }, ops: { enabled: false } }), { mode: 0o600 });
    await assert.rejects(openApp(loadConfig({ path: file, env: {}, cwd: dir }).config, { logger: createLogger('silent') }), /security\.pepper: this store was written with another pepper/);
  });

  describe('on Redis', () => {
    let redis: TestRedis;
    before(async () => {
      redis = await startRedis();
    });
    after(async () => redis?.close());

    const config = (pepper: string) => {
      const file = join(dir, `redis-${pepper}.yaml`);
      writeFileSync(file, stringify({ log: { level: 'silent' }, data_dir: join(dir, 'redis'), redis: { url: redis.url, key_prefix: redis.prefix }, security: { argon2: FAST_ARGON2, pepper }, ops: { enabled: false } }), { mode: 0o600 });
      return loadConfig({ path: file, env: {}, cwd: dir }).config;
    };

    it('the first instance records the check; an instance with another pepper does not start', async () => {
      const first = await openApp(config('redis-pepper-one-0123456789'), { logger: createLogger('silent') });
      await first.close();
      await assert.rejects(openApp(config('redis-pepper-two-0123456789'), { logger: createLogger('silent') }), /security\.pepper: this store was written with another pepper/);
      const again = await openApp(config('redis-pepper-one-0123456789'), { logger: createLogger('silent') });
      await again.close();
    });
  });

  it('an inline secret in a config file others can read is warned about', () => {
    const file = folder('readable', 'inline-pepper-0123456789abc');
    chmodSync(file, 0o644);
    const { warnings } = loadConfig({ path: file, env: {}, cwd: dir });
    assert.ok(warnings.some((w) => w.includes('holds security.pepper inline and is readable by other users')), warnings.join('\n'));
    chmodSync(file, 0o600);
    assert.deepEqual(loadConfig({ path: file, env: {}, cwd: dir }).warnings, []);
  });
});
