/**
 * `store export` / `store import` after the security review, through the real CLI on a real SQLite file and a real
 * Redis: an old file never brings a revoked password back, both are audited, a file from another pepper is refused
 * before any write, a failing SQLite import writes nothing, `--out` never overwrites and never leaves half a file,
 * and the export is never written to a terminal.
 */
import assert from 'node:assert/strict';
import { existsSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import Database from 'better-sqlite3';
import { stringify } from 'yaml';
import { openApp, type App } from '../../src/app.js';
import { loadConfig } from '../../src/config/config-loader.js';
import { createLogger } from '../../src/observability/logger.js';
import { makeRecord } from '../helpers/records.js';
import { startRedis, type TestRedis } from '../helpers/redis-server.js';
import { runCli } from '../helpers/run-cli.js';
import { FAST_ARGON2, makeTestConfig, type TestConfig } from '../helpers/test-config.js';
import { CLI_ACTOR } from '../../src/core/actor.js';
import { skipWithout } from '../helpers/required-tool.js';

const needsScript = skipWithout('script', ['--version'], 'script(1) from util-linux gives the CLI a terminal');

describe('store export / import: safety', () => {
  let tc: TestConfig;
  let redis: TestRedis;
  const secrets: string[] = [];
  let scanner: { id: string; password: string };
  let laptop: { id: string; password: string };

  const cli = (args: string[], options: { config?: string; input?: string; wrap?: string[] } = {}) =>
    runCli(['--config', options.config ?? tc.file, ...args], { cwd: tc.dir, ...(options.input !== undefined ? { input: options.input } : {}), ...(options.wrap ? { wrap: options.wrap } : {}) });

  async function withApp<T>(configFile: string, fn: (app: App) => Promise<T>): Promise<T> {
    const app = await openApp(loadConfig({ path: configFile, env: {}, cwd: tc.dir }).config, { logger: createLogger('silent') });
    try {
      return await fn(app);
    } finally {
      await app.close();
    }
  }

  const redisConfig = (name: string, pepper = tc.config.security.pepper) => {
    const file = join(tc.dir, `${name}.yaml`);
    writeFileSync(file, stringify({ log: { level: 'silent' }, security: { pepper, argon2: FAST_ARGON2 }, redis: { url: redis.url, key_prefix: `${redis.prefix}${name}:` } }), { mode: 0o600 });
    return file;
  };

  /** Nothing the operator sees may hold a password, a hash, a selector or the pepper. */
  function assertNoSecrets(text: string) {
    assert.ok(!text.includes('$argon2'), 'a hash was printed');
    assert.ok(!text.includes(tc.config.security.pepper), 'the pepper was printed');
    for (const secret of secrets) assert.ok(!text.includes(secret), 'a secret was printed');
  }

  before(async () => {
    tc = makeTestConfig({ data_dir: 'data' });
    redis = await startRedis();
    await withApp(tc.file, async (app) => {
      for (const [name, target] of [['Scanner', 'scanner'], ['Laptop', 'laptop']] as const) {
        const created = await app.admin.appPasswords.create(CLI_ACTOR, { username: 'office@example.com', name });
        const entry = { id: created.view.id, password: created.password };
        if (target === 'scanner') scanner = entry;
        else laptop = entry;
        secrets.push(created.password);
      }
      for (const record of await app.store.list()) secrets.push(record.hash, `"selector":"${record.selector}"`);
    });
  });
  after(async () => {
    await redis.close();
    tc.cleanup();
  });

  it('an old export never brings a revoked password back (SQLite and Redis), and says what it kept', async () => {
    const monday = join(tc.dir, 'monday.jsonl');
    const exported = await cli(['store', 'export', '--out', monday]);
    assert.equal(exported.code, 0, exported.stderr);
    assert.equal(exported.stderr, `exported 2 app passwords and 0 token states to ${monday}\n`);
    assert.match(readFileSync(monday, 'utf8').split('\n')[0]!, /^\{"pepperCheck":"v1\.[0-9a-f]{64}"\}$/);

    // Tuesday: the scanner is stolen and its password revoked; the laptop is used.
    assert.equal((await cli(['app-password', 'revoke', scanner.id])).code, 0);
    await withApp(tc.file, async (app) => assert.equal((await app.verifier.verify('office@example.com', laptop.password)).ok, true));

    // Wednesday: Monday's file goes back in.
    const imported = await cli(['store', 'import', '--in', monday]);
    assert.equal(imported.code, 0, imported.stderr);
    assert.equal(imported.stderr, 'imported 2 app passwords (0 new, 1 replaced, 1 kept revoked), 0 token states\n');
    await withApp(tc.file, async (app) => {
      const stolen = await app.verifier.verify('office@example.com', scanner.password);
      assert.equal(stolen.ok ? 'ok' : stolen.reason, 'revoked', 'the stolen password works again');
      assert.equal((await app.verifier.verify('office@example.com', laptop.password)).ok, true);
    });

    // The same on Redis: moved there, revoked there, the old file imported again.
    const onRedis = redisConfig('revoked');
    assert.match((await cli(['store', 'import', '--in', monday], { config: onRedis })).stderr, /imported 2 app passwords \(2 new, 0 replaced, 0 kept revoked\)/);
    assert.equal((await cli(['app-password', 'revoke', scanner.id], { config: onRedis })).code, 0);
    const again = await cli(['store', 'import', '--in', monday], { config: onRedis });
    assert.equal(again.code, 0, again.stderr);
    assert.match(again.stderr, /imported 2 app passwords \(0 new, 1 replaced, 1 kept revoked\), 0 token states/);
    await withApp(onRedis, async (app) => {
      const stolen = await app.verifier.verify('office@example.com', scanner.password);
      assert.equal(stolen.ok ? 'ok' : stolen.reason, 'revoked');
      assert.deepEqual((await app.admin.appPasswords.list(CLI_ACTOR)).map((v) => [v.name, v.revokedAt === null]), [['Scanner', false], ['Laptop', true]]);
    });
  });

  it('audits every export and import, and `passgate audit` shows them without a secret', async () => {
    // A store of its own (each test stands alone): two passwords, exported, imported back, and moved to Redis twice.
    const own = makeTestConfig({ data_dir: 'data' });
    const ownCli = (args: string[], config = own.file) => runCli(['--config', config, ...args], { cwd: own.dir });
    try {
      await withApp(own.file, async (app) => {
        for (const name of ['Scanner', 'Laptop']) secrets.push((await app.admin.appPasswords.create(CLI_ACTOR, { username: 'audit@example.com', name })).password);
        for (const record of await app.store.list()) secrets.push(record.hash);
      });
      const file = join(own.dir, 'audited.jsonl');
      assert.equal((await ownCli(['store', 'export', '--out', file])).code, 0);
      assert.equal((await ownCli(['store', 'import', '--in', file])).code, 0);
      const audit = await ownCli(['audit', '--json']);
      assert.equal(audit.code, 0, audit.stderr);
      const events = JSON.parse(audit.stdout) as { action: string; username: string; reason: string; detail: string }[];
      const store = events.filter((e) => e.action.startsWith('store.'));
      assert.deepEqual(
        store.map((e) => [e.action, e.username, e.reason]),
        [
          ['store.import', '(store)', 'ok'],
          ['store.export', '(store)', 'ok'],
        ],
      );
      assert.match(store[0]!.detail, /^by cli:.*: 2 app passwords \(\d+ new, \d+ replaced, 0 kept revoked\), 0 token states$/);
      assert.match(store[1]!.detail, /^by cli:.*: 2 app passwords, 0 token states to .*audited\.jsonl$/);
      const table = await ownCli(['audit']);
      assert.match(table.stdout, /store\.import +- +\(store\)/);
      assert.match(table.stdout, /store\.export +- +\(store\)/);
      assertNoSecrets(audit.stdout + table.stdout);
      // Redis keeps its own sign-in log: the imports there are in it.
      const onRedis = redisConfig('audited', own.config.security.pepper);
      for (let i = 0; i < 2; i++) assert.equal((await ownCli(['store', 'import', '--in', file], onRedis)).code, 0);
      assert.deepEqual(
        (JSON.parse((await ownCli(['audit', '--json'], onRedis)).stdout) as { action: string }[]).map((e) => e.action).filter((a) => a.startsWith('store.')),
        ['store.import', 'store.import'],
      );
    } finally {
      own.cleanup();
    }
  });

  it('refuses a file from another pepper before writing anything, naming security.pepper; a file without a check still imports', async () => {
    const exported = await cli(['store', 'export']);
    assert.equal(exported.code, 0, exported.stderr);
    const fresh = redisConfig('other-pepper', 'another-pepper-of-a-fresh-install');
    const refused = await cli(['store', 'import'], { config: fresh, input: exported.stdout });
    assert.equal(refused.code, 2, refused.stderr);
    assert.match(refused.stderr, /^passgate: line 1: the file was exported under another security\.pepper .*nothing was imported\n$/);
    assertNoSecrets(refused.stderr);
    await withApp(fresh, async (app) => {
      assert.equal((await app.admin.appPasswords.list(CLI_ACTOR)).length, 0);
      assert.deepEqual(await app.audit.query({ limit: 10 }), []);
    });

    // A file from before the check (no first line) imports as it always did, with a warning.
    const legacy = exported.stdout.split('\n').slice(1).join('\n');
    const old = await cli(['store', 'import'], { config: redisConfig('legacy'), input: legacy });
    assert.equal(old.code, 0, old.stderr);
    assert.match(old.stderr, /warning: the file has no pepper check .*security\.pepper/);
    assert.match(old.stderr, /imported 2 app passwords \(2 new, 0 replaced, 0 kept revoked\)/);
    await withApp(join(tc.dir, 'legacy.yaml'), async (app) => assert.equal((await app.verifier.verify('office@example.com', laptop.password)).ok, true));

    const tampered = exported.stdout.replace(/"pepperCheck":"v1\.[0-9a-f]+"/, '"pepperCheck":"v2.00"');
    const newer = await cli(['store', 'import'], { config: fresh, input: tampered });
    assert.equal(newer.code, 2);
    assert.match(newer.stderr, /line 1: pepperCheck: expected v1\.<64 hex digits>/);
  });

  it('an import that fails part way on SQLite writes nothing, and is audited as failed', async () => {
    const target = makeTestConfig({ data_dir: 'data', security: { pepper: tc.config.security.pepper } });
    try {
      await withApp(target.file, async () => undefined); // creates the store file
      const file = join(tc.dir, 'many.jsonl');
      const first = makeRecord({ username: 'first@example.com' });
      const last = makeRecord({ username: 'last@example.com' });
      const check = (await cli(['store', 'export'])).stdout.split('\n')[0]!; // this pepper's check line
      writeFileSync(file, [check, JSON.stringify(first), JSON.stringify(last)].join('\n'));
      const db = new Database(target.config.sqlite.path);
      db.exec(`CREATE TRIGGER fail_last BEFORE INSERT ON app_passwords WHEN NEW.id = '${last.id}' BEGIN SELECT RAISE(ABORT, 'disk I/O error'); END`);
      db.close();
      const failed = await runCli(['--config', target.file, 'store', 'import', '--in', file], { cwd: target.dir });
      assert.equal(failed.code, 1, failed.stderr);
      assert.equal(failed.stderr, 'passgate: embedded store: import failed: disk I/O error\n');
      await withApp(target.file, async (app) => {
        assert.deepEqual(await app.store.list(), [], 'the first record was rolled back');
        const [event] = await app.audit.query({ limit: 1 });
        assert.deepEqual([event?.action, event?.reason], ['store.import', 'unavailable']);
        assert.match(event!.detail!, /failed: embedded store: import failed: disk I\/O error/);
      });
    } finally {
      target.cleanup();
    }
  });

  it('--out never overwrites a file, names the file on an I/O error, and removes a partial file', async () => {
    const existing = join(tc.dir, 'existing.jsonl');
    writeFileSync(existing, 'keep me\n');
    const taken = await cli(['store', 'export', '--out', existing]);
    assert.equal(taken.code, 2);
    assert.equal(taken.stderr, `passgate: --out ${existing}: the file already exists (an export never overwrites one): choose a new name or remove it first\n`);
    assert.equal(readFileSync(existing, 'utf8'), 'keep me\n');

    const nowhere = join(tc.dir, 'no-such-dir', 'pw.jsonl');
    const missing = await cli(['store', 'export', '--out', nowhere]);
    assert.equal(missing.code, 1);
    assert.equal(missing.stderr, `passgate: cannot create ${nowhere}: ENOENT\n`);

    // A file size limit (as a full disk would) stops the write part way: EFBIG, and no half file is left.
    // The Redis store keeps the CLI's only local write the export itself.
    const big = redisConfig('big');
    await withApp(big, async (app) => {
      await app.store.importRecords(Array.from({ length: 20 }, (_, i) => makeRecord({ username: `big${i}@example.com` })));
    });
    const partial = join(tc.dir, 'partial.jsonl');
    const cut = await cli(['store', 'export', '--out', partial], { config: big, wrap: ['sh', '-c', 'ulimit -f 4 && exec "$@"', 'sh'] });
    assert.equal(cut.code, 1, cut.stderr);
    assert.equal(cut.stderr, `passgate: cannot write ${partial}: EFBIG; the partial file was removed\n`);
    assert.equal(existsSync(partial), false);
    assert.equal((await cli(['store', 'export', '--out', partial], { config: big })).code, 0, 'without the limit it works');
  });

  it('refuses to write the export to a terminal; a pipe works', { skip: needsScript }, async () => {
    const onTty = await cli(['store', 'export'], { wrap: ['bash', '-c', 'exec script -qec "${*@Q}" /dev/null', 'bash'] });
    assert.equal(onTty.code, 2, onTty.stdout);
    assert.match(onTty.stdout, /store export writes password hashes and selectors: not to a terminal\. Use --out FILE, or pipe it/);
    assertNoSecrets(onTty.stdout + onTty.stderr);
    const piped = await cli(['store', 'export']);
    assert.equal(piped.code, 0, piped.stderr);
    assert.equal(piped.stdout.trim().split('\n').length, 3);
  });

  it('store import with a terminal on stdin and no --in says what it needs instead of waiting', { skip: needsScript }, async () => {
    const waiting = await cli(['store', 'import'], { wrap: ['bash', '-c', 'exec script -qec "${*@Q}" /dev/null', 'bash'] });
    assert.equal(waiting.code, 2, waiting.stdout);
    assert.match(waiting.stdout, /store import reads what store export wrote: give --in FILE, or pipe it in \(stdin is a terminal\)/);
  });

  it('fails, never reporting success, when the reading end of the pipe is gone', async () => {
    // `true` exits before the CLI writes its first line: every write gets EPIPE.
    const gone = await cli(['store', 'export'], { wrap: ['bash', '-c', 'set -o pipefail; "$@" | true', 'bash'] });
    assert.equal(gone.code, 1, gone.stderr);
    assert.equal(gone.stderr, 'passgate: cannot write the export to stdout (did the reading end of the pipe close?): EPIPE\n');
    // Audited all the same: what went out before the pipe closed may already hold hashes.
    const [newest] = JSON.parse((await cli(['audit', '--json', '--limit', '1'])).stdout) as { action: string; reason: string; detail: string }[];
    assert.deepEqual([newest?.action, newest?.reason], ['store.export', 'unavailable']);
    assert.match(newest!.detail, /^by cli:.*: stopped after \d+ of \d+ lines to stdout: .*EPIPE/);
  });
});
