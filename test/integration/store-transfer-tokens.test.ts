/**
 * `store export` / `store import` move token state too (delegated mode: each mailbox's refresh token), sealed as
 * stored, so moving from the embedded store to Redis does not mean connecting every mailbox again. A file whose
 * tokens were sealed under another oauth.token_encryption_key is refused whole, naming the key.
 */
import assert from 'node:assert/strict';
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { stringify } from 'yaml';
import { loadConfig } from '../../src/config/config-loader.js';
import { openApp } from '../../src/app.js';
import type { StoredTokenState } from '../../src/core/token-state-store.js';
import { createLogger } from '../../src/observability/logger.js';
import { runCli } from '../helpers/run-cli.js';
import { startRedis, type TestRedis } from '../helpers/redis-server.js';
import { FAST_ARGON2, makeTestConfig, type TestConfig } from '../helpers/test-config.js';
import { CLI_ACTOR } from '../../src/core/actor.js';

const KEY = Buffer.alloc(32, 3).toString('base64');
const OTHER_KEY = Buffer.alloc(32, 4).toString('base64');
const REFRESH = 'refresh-token-that-must-never-appear-in-clear';

describe('store export / import with token state', () => {
  let tc: TestConfig;
  let redis: TestRedis;
  let state: StoredTokenState;

  before(async () => {
    tc = makeTestConfig({ data_dir: 'data', oauth: { token_encryption_key: KEY } });
    redis = await startRedis();
    const app = await openApp(tc.config, { logger: createLogger('silent') });
    try {
      await app.admin.appPasswords.create(CLI_ACTOR, { username: 'boss@example.com', name: 'Laptop' });
      state = {
        key: 'mailbox:boss@example.com',
        sealedRefreshToken: app.tokenCipher!.seal(REFRESH, 'mailbox:boss@example.com'),
        sealedAccessToken: null,
        accessExpiresAt: null,
        accessObtainedAt: null,
        status: 'ok',
        lastSuccessAt: 1_700_000_000_000,
        failingSince: null,
        failures: 0,
        nextAttemptAt: null,
        lastError: null,
        updatedAt: 1_700_000_000_000,
      };
      await app.tokenStates.put(state);
    } finally {
      await app.close();
    }
  });
  after(async () => {
    await redis.close();
    tc.cleanup();
  });

  const redisConfig = (name: string, key: string) => {
    const file = join(tc.dir, name);
    writeFileSync(file, stringify({ log: { level: 'silent' }, security: { pepper: tc.config.security.pepper, argon2: FAST_ARGON2 }, oauth: { token_encryption_key: key }, redis: { url: redis.url, key_prefix: `${redis.prefix}${name}:` } }), { mode: 0o600 });
    return file;
  };

  it('moves a mailbox\'s sealed refresh token to Redis, where it opens with the same key', async () => {
    const exported = await runCli(['--config', tc.file, 'store', 'export'], { cwd: tc.dir });
    assert.equal(exported.code, 0, exported.stderr);
    assert.match(exported.stderr, /exported 1 app passwords and 1 token states/);
    assert.ok(!exported.stdout.includes(REFRESH), 'a token in clear in the export');

    const file = redisConfig('same-key.yaml', KEY);
    const imported = await runCli(['--config', file, 'store', 'import'], { cwd: tc.dir, input: exported.stdout });
    assert.equal(imported.code, 0, imported.stderr);
    assert.match(imported.stderr, /imported 1 app passwords \(1 new, 0 replaced, 0 kept revoked\), 1 token states/);
    const { config } = loadConfig({ path: file, env: {}, cwd: tc.dir });
    const app = await openApp(config, { logger: createLogger('silent') });
    try {
      const moved = await app.tokenStates.get(state.key);
      assert.deepEqual(moved, state);
      assert.equal(app.tokenCipher!.open(moved!.sealedRefreshToken!, state.key), REFRESH);
      assert.equal((await app.admin.appPasswords.list(CLI_ACTOR)).length, 1);
    } finally {
      await app.close();
    }
  });

  it('refuses, and writes nothing, when the tokens were sealed under another key', async () => {
    const exported = await runCli(['--config', tc.file, 'store', 'export'], { cwd: tc.dir });
    const file = redisConfig('other-key.yaml', OTHER_KEY);
    const refused = await runCli(['--config', file, 'store', 'import'], { cwd: tc.dir, input: exported.stdout });
    assert.equal(refused.code, 2);
    assert.match(refused.stderr, /line 3: mailbox:boss@example\.com: its refresh token does not open with this configuration's oauth\.token_encryption_key/);
    const { config } = loadConfig({ path: file, env: {}, cwd: tc.dir });
    const app = await openApp(config, { logger: createLogger('silent') });
    try {
      assert.equal((await app.admin.appPasswords.list(CLI_ACTOR)).length, 0, 'the records before the bad line were not written either');
      assert.equal(await app.tokenStates.get(state.key), null);
    } finally {
      await app.close();
    }
  });

  it('an older file does not replace newer token state (a rotated refresh token stays); a newer file does', async () => {
    const exported = await runCli(['--config', tc.file, 'store', 'export'], { cwd: tc.dir });
    const file = redisConfig('newer-here.yaml', KEY);
    const { config } = loadConfig({ path: file, env: {}, cwd: tc.dir });
    let app = await openApp(config, { logger: createLogger('silent') });
    const rotated = { ...state, sealedRefreshToken: app.tokenCipher!.seal('rotated-since', state.key), updatedAt: state.updatedAt + 60_000 };
    try {
      await app.tokenStates.put(rotated); // a serving instance redeemed and rotated it after the export
    } finally {
      await app.close();
    }
    const old = await runCli(['--config', file, 'store', 'import'], { cwd: tc.dir, input: exported.stdout });
    assert.equal(old.code, 0, old.stderr);
    assert.match(old.stderr, /1 token states \(1 kept: newer here\)/);
    app = await openApp(config, { logger: createLogger('silent') });
    try {
      assert.deepEqual(await app.tokenStates.get(state.key), rotated);
    } finally {
      await app.close();
    }
    const newer = exported.stdout.replace(`"updatedAt":${state.updatedAt}}`, `"updatedAt":${state.updatedAt + 120_000}}`);
    assert.notEqual(newer, exported.stdout);
    const replaced = await runCli(['--config', file, 'store', 'import'], { cwd: tc.dir, input: newer });
    assert.match(replaced.stderr, /, 1 token states\n$/);
    app = await openApp(config, { logger: createLogger('silent') });
    try {
      assert.equal((await app.tokenStates.get(state.key))?.updatedAt, state.updatedAt + 120_000);
    } finally {
      await app.close();
    }
  });

  it('--no-tokens leaves token state out', async () => {
    const exported = await runCli(['--config', tc.file, 'store', 'export', '--no-tokens'], { cwd: tc.dir });
    assert.equal(exported.code, 0, exported.stderr);
    assert.match(exported.stderr, /exported 1 app passwords and 0 token states/);
    assert.ok(!exported.stdout.includes('tokenState'));
  });
});
