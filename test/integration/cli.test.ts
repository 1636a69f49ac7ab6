import assert from 'node:assert/strict';
import { readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { stringify } from 'yaml';
import { loadConfig } from '../../src/config/config-loader.js';
import { openApp } from '../../src/app.js';
import { createLogger } from '../../src/observability/logger.js';
import { runCli } from '../helpers/run-cli.js';
import { startRedis, type TestRedis } from '../helpers/redis-server.js';
import { FAST_ARGON2, makeTestConfig, type TestConfig } from '../helpers/test-config.js';
import { CLI_ACTOR } from '../../src/core/actor.js';

describe('passgate CLI', () => {
  /** Each test has a store of its own (each stands alone): a config, its CLI, and what it must never print. */
  const configs: TestConfig[] = [];
  const secrets: string[] = [];
  const fresh = () => {
    const tc = makeTestConfig({ data_dir: 'data' });
    configs.push(tc);
    secrets.push(tc.config.security.pepper);
    return { tc, cli: (...args: string[]) => runCli(['--config', tc.file, ...args], { cwd: tc.dir }) };
  };
  after(() => configs.forEach((tc) => tc.cleanup()));

  /** Nothing an operator sees may contain a password, a hash, a selector or the pepper. */
  function assertNoSecrets(text: string) {
    assert.ok(!text.includes('$argon2'), 'a hash was printed');
    for (const secret of secrets) {
      assert.ok(!text.includes(secret), 'a secret was printed');
      assert.ok(!text.toLowerCase().includes(secret.replace(/-/g, '')), 'a secret was printed');
    }
  }

  /** The scanner's two passwords as the first test creates them; the second one's id. */
  async function scannerPasswords(cli: (...args: string[]) => Promise<{ code: number | null; stdout: string; stderr: string }>): Promise<string> {
    const human = await cli('app-password', 'create', '--user', 'Scanner@Example.com', '--name', 'Scanner, 3rd floor', '--scope', 'smtp', '--allow-from', '192.168.1.0/24', '--allow-from', '10.0.0.5', '--expires', '90d');
    assert.equal(human.code, 0, human.stderr);
    secrets.push(/^ {4}([a-z]{4}(?:-[a-z]{4}){3})$/m.exec(human.stdout)![1]!);
    const created = JSON.parse((await cli('app-password', 'create', '--user', 'scanner@example.com', '--name', 'Printer', '--json', '--length', '12')).stdout);
    secrets.push(created.password);
    return created.id;
  }

  it('creates an app password, prints it once, and --json gives one object', async () => {
    const { cli } = fresh();
    const human = await cli('app-password', 'create', '--user', 'Scanner@Example.com', '--name', 'Scanner, 3rd floor', '--scope', 'smtp', '--allow-from', '192.168.1.0/24', '--allow-from', '10.0.0.5', '--expires', '90d');
    assert.equal(human.code, 0, human.stderr);
    const shown = /^ {4}([a-z]{4}(?:-[a-z]{4}){3})$/m.exec(human.stdout);
    assert.ok(shown, human.stdout);
    secrets.push(shown[1]!);
    assert.match(human.stdout, /only time it is shown/);
    assert.match(human.stdout, /username: +scanner@example\.com/);
    assert.match(human.stdout, /SMTP: .*587/);
    assert.doesNotMatch(human.stdout, /IMAP:/);

    const json = await cli('app-password', 'create', '--user', 'scanner@example.com', '--name', 'Printer', '--json', '--length', '12');
    assert.equal(json.code, 0, json.stderr);
    const created = JSON.parse(json.stdout);
    assert.match(created.password, /^[a-z]{4}-[a-z]{4}-[a-z]{4}$/);
    assert.deepEqual(created.scopes, ['smtp', 'imap', 'pop3']);
    assert.equal(created.mailbox, 'scanner@example.com');
    assert.equal(created.hash, undefined);
    assert.equal(created.selector, undefined);
    secrets.push(created.password);
  });

  it('lists, shows and audits without ever printing a hash or a password', async () => {
    const { cli } = fresh();
    const id = await scannerPasswords(cli);
    const list = await cli('app-password', 'list');
    assert.equal(list.code, 0, list.stderr);
    assert.match(list.stdout, /Scanner, 3rd floor/);
    assert.match(list.stdout, /Printer/);
    const listJson = JSON.parse((await cli('app-password', 'list', '--json', '--user', 'SCANNER@example.com')).stdout);
    assert.equal(listJson.length, 2);
    assert.deepEqual(listJson[0].allowedNetworks, ['192.168.1.0/24', '10.0.0.5']);
    const show = await cli('app-password', 'show', id);
    assert.match(show.stdout, /name: +Printer/);
    const showJson = JSON.parse((await cli('app-password', 'show', id, '--json')).stdout);
    assert.equal(showJson.status, 'active');
    const audit = await cli('audit', '--since', '1h');
    assert.match(audit.stdout, /app-password\.create/);
    const auditJson = JSON.parse((await cli('audit', '--json', '--user', 'scanner@example.com')).stdout);
    assert.equal(auditJson.length, 2);
    for (const out of [list, show, audit]) assertNoSecrets(out.stdout + out.stderr);
    assertNoSecrets(JSON.stringify([listJson, showJson, auditJson]));
  });

  it('revokes one, then all, and audits both', async () => {
    const { cli } = fresh();
    const id = await scannerPasswords(cli);
    const revoke = await cli('app-password', 'revoke', id);
    assert.equal(revoke.code, 0, revoke.stderr);
    assert.match(revoke.stdout, /revoked ap_/);
    const all = await cli('app-password', 'revoke-all', '--user', 'scanner@example.com');
    assert.match(all.stdout, /revoked 1 app password of scanner@example\.com/);
    assert.equal((await cli('app-password', 'list')).stdout, 'no app passwords\n');
    assert.match((await cli('app-password', 'list', '--all')).stdout, /revoked[\s\S]*revoked/);
    const actions = JSON.parse((await cli('audit', '--json')).stdout).map((e: { action: string }) => e.action);
    assert.deepEqual(actions.slice(0, 2), ['app-password.revoke-all', 'app-password.revoke']);
  });

  it('--version prints the package version and exits 0', async () => {
    const { version } = JSON.parse(readFileSync(new URL('../../package.json', import.meta.url), 'utf8')) as { version: string };
    const { tc } = fresh();
    for (const flag of ['--version', '-V']) {
      const result = await runCli([flag], { cwd: tc.dir });
      assert.deepEqual([result.code, result.stdout, result.stderr], [0, `${version}\n`, '']);
    }
  });

  it('fails with a message on stderr and a non-zero exit code', async () => {
    const { tc, cli } = fresh();
    const cases: [string[], number, RegExp][] = [
      [['app-password', 'show', 'ap_nosuchthingxxxx'], 1, /no app password with id "ap_nosuchthingxxxx"/],
      [['app-password', 'create', '--user', 'a@x', '--name', 'n', '--scope', 'smtp,pop2'], 2, /unknown scope "pop2": use smtp, imap, pop3/],
      [['app-password', 'create', '--name', 'n'], 2, /required option '--user <address>'/],
      [['app-password', 'create', '--user', 'a b@x', '--name', 'n'], 2, /invalid user/],
      [['app-password', 'create', '--user', 'a@x', '--name', 'n', '--expires', 'soon'], 2, /invalid --expires "soon"/],
      [['app-password', 'create', '--user', 'a@x', '--name', 'n', '--allow-from', '10.0.0.0/33'], 2, /invalid network "10\.0\.0\.0\/33"/],
      [['app-password', 'create', '--user', 'a@x', '--name', 'n', '--length', '4'], 2, /invalid length/],
      [['audit', '--since', 'yesterday'], 2, /invalid duration "yesterday"/],
      [['no-such-command'], 2, /unknown command/],
    ];
    for (const [args, code, pattern] of cases) {
      const result = await cli(...args);
      assert.equal(result.code, code, `${args.join(' ')}: ${result.stderr}`);
      assert.match(result.stderr, pattern, args.join(' '));
      assert.equal(result.stdout, '', args.join(' '));
    }
    const badConfig = join(tc.dir, 'bad.yaml');
    writeFileSync(badConfig, 'redis:\n  urll: x\n');
    const bad = await runCli(['--config', badConfig, 'app-password', 'list'], { cwd: tc.dir });
    assert.equal(bad.code, 2);
    assert.match(bad.stderr, /redis\.urll: unknown key/);
  });

  describe('store export / import', () => {
    let redis: TestRedis;
    before(async () => {
      redis = await startRedis();
    });
    after(async () => redis.close());

    it('moves every app password from SQLite to Redis, and they verify there', async () => {
      const { tc, cli } = fresh();
      await scannerPasswords(cli);
      const created = JSON.parse((await cli('app-password', 'create', '--user', 'move@example.com', '--name', 'Mover', '--json')).stdout);
      secrets.push(created.password);
      const exported = await cli('store', 'export');
      assert.equal(exported.code, 0, exported.stderr);
      assert.match(exported.stderr, /exported 3 app passwords/);
      assertNoSecrets(exported.stdout.replace(/"hash":"[^"]*"/g, ''));

      const redisYaml = join(tc.dir, 'redis.yaml');
      writeFileSync(redisYaml, stringify({ log: { level: 'silent' }, security: { pepper: tc.config.security.pepper, argon2: FAST_ARGON2 }, redis: { url: redis.url, key_prefix: redis.prefix } }), { mode: 0o600 });
      const imported = await runCli(['--config', redisYaml, 'store', 'import'], { cwd: tc.dir, input: exported.stdout });
      assert.equal(imported.code, 0, imported.stderr);
      assert.match(imported.stderr, /imported 3 app passwords \(3 new, 0 replaced, 0 kept revoked\)/);

      const { config } = loadConfig({ path: redisYaml, env: {}, cwd: tc.dir });
      const app = await openApp(config, { logger: createLogger('silent') });
      try {
        const result = await app.verifier.verify('move@example.com', created.password);
        assert.equal(result.ok && result.record.name, 'Mover');
        assert.equal((await app.admin.appPasswords.list(CLI_ACTOR)).length, 3);
      } finally {
        await app.close();
      }

      const broken = await runCli(['--config', redisYaml, 'store', 'import'], { cwd: tc.dir, input: '{"id":"nope"}\n' });
      assert.equal(broken.code, 2);
      assert.match(broken.stderr, /line 1: id: /);
      const line = JSON.parse(exported.stdout.split('\n')[1]!);
      const badNetwork = JSON.stringify({ ...line, allowedNetworks: ['10.0.0.0/99'] });
      const refused = await runCli(['--config', redisYaml, 'store', 'import'], { cwd: tc.dir, input: `${badNetwork}\n` });
      assert.match(refused.stderr, /line 1: allowedNetworks\.0: expected an address or CIDR/);
      const mixedCase = JSON.stringify({ ...line, username: ' Mixed@Example.COM ' });
      assert.equal((await runCli(['--config', redisYaml, 'store', 'import'], { cwd: tc.dir, input: `${mixedCase}\n` })).code, 0);
      const reread = await openApp(config, { logger: createLogger('silent') });
      try {
        assert.equal((await reread.store.get(line.id))!.username, 'mixed@example.com');
        assert.equal((await reread.admin.appPasswords.list(CLI_ACTOR, { username: line.username })).some((v) => v.id === line.id), false, 'moved off the old user');
      } finally {
        await reread.close();
      }
    });
  });
});

describe('passgate audit output', () => {
  it('shows control characters from clients as \\xNN, never raw to the terminal', async () => {
    const tc = makeTestConfig({ data_dir: 'data' });
    try {
      const app = await openApp(tc.config, { logger: createLogger('silent') });
      await app.authenticator.authenticate({ username: 'evil\u001b]52;c;aGk=\u0007@example.com', password: 'x', protocol: 'smtp', clientIp: '192.0.2.1', secure: true });
      await app.close();
      const out = await runCli(['--config', tc.file, 'audit'], { cwd: tc.dir });
      assert.equal(out.code, 0, out.stderr);
      assert.ok(!out.stdout.includes('\u001b') && !out.stdout.includes('\u0007'));
      assert.match(out.stdout, /evil\\x1b\]52;c;agk=\\x07@example\.com/);
    } finally {
      tc.cleanup();
    }
  });
});
