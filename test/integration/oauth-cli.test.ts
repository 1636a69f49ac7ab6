import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { resolve } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { TestOAuthServer } from '../helpers/oauth-server.js';
import { oauthSection } from '../helpers/oauth-test-app.js';
import { runCli } from '../helpers/run-cli.js';
import { makeTestConfig, type TestConfig } from '../helpers/test-config.js';

describe('passgate oauth (CLI, delegated mode, real OAuth server)', () => {
  let server: TestOAuthServer;
  let tc: TestConfig;
  const cli = (args: string[], input?: string) => runCli(['--config', tc.file, 'oauth', ...args], { cwd: tc.dir, ...(input !== undefined ? { input } : {}) });
  const status = async () => JSON.parse((await cli(['status', '--json'])).stdout) as { mailbox: string; state: string; failingSince: number | null; lastError: string | null }[];

  before(async () => {
    server = await new TestOAuthServer().start();
    tc = makeTestConfig({ oauth: oauthSection(server, { mode: 'delegated' }) });
  });
  after(async () => {
    await server.stop();
    tc.cleanup();
  });

  it('shows nothing connected at first', async () => {
    const result = await cli(['status']);
    assert.equal(result.code, 0, result.stderr);
    assert.match(result.stdout, /no mailbox connected yet/);
  });

  it('connects a mailbox through the device-code flow', async () => {
    const child = spawn(process.execPath, ['--import', import.meta.resolve('tsx'), resolve(import.meta.dirname, '../../src/cli.ts'), '--config', tc.file, 'oauth', 'connect', '--mailbox', 'Device@Example.com'], { cwd: tc.dir });
    let stdout = '';
    let stderr = '';
    child.stderr.on('data', (d) => (stderr += d));
    const code = await new Promise<number>((resolvePromise) => {
      child.stdout.on('data', (d) => {
        stdout += d;
        const userCode = /code: +([0-9A-F]+)/.exec(stdout)?.[1];
        // The person at the verification page signs in as the mailbox.
        if (userCode && !stdout.includes('approved')) {
          stdout += 'approved';
          server.approveDevice(userCode, 'device@example.com');
        }
      });
      child.on('close', (c) => resolvePromise(c ?? -1));
    });
    assert.equal(code, 0, stderr);
    assert.match(stdout, new RegExp(`open: +${server.url}/device`));
    assert.match(stdout, /connected device@example\.com/);
    const [entry] = await status();
    assert.deepEqual([entry!.mailbox, entry!.state], ['device@example.com', 'ok']);
  });

  it('imports a refresh token, redeems it at once, and reports each state', async () => {
    const imported = await cli(['import', '--mailbox', 'ok@example.com'], `${server.mintRefreshToken('ok@example.com')}\n`);
    assert.equal(imported.code, 0, imported.stderr);
    assert.match(imported.stdout, /imported the refresh token of ok@example\.com/);

    // needs connect: a refresh token the provider does not honour (revoked, expired or mistyped)
    const bad = await cli(['import', '--mailbox', 'gone@example.com'], 'rt-not-a-real-token');
    assert.equal(bad.code, 1);
    assert.match(bad.stderr, /grant-lost failure from the provider: invalid_grant/);

    // failing since: the provider is down
    await cli(['import', '--mailbox', 'down@example.com'], server.mintRefreshToken('down@example.com'));
    server.failNext(1, { status: 503, body: 'down' });
    const down = await cli(['import', '--mailbox', 'down@example.com'], server.mintRefreshToken('down@example.com'));
    assert.equal(down.code, 1);

    const states = Object.fromEntries((await status()).map((s) => [s.mailbox, s]));
    assert.equal(states['ok@example.com']!.state, 'ok');
    assert.equal(states['gone@example.com']!.state, 'needs-connect');
    assert.equal(states['down@example.com']!.state, 'failing');
    assert.ok(states['down@example.com']!.failingSince! > 0);
    assert.match(states['down@example.com']!.lastError!, /http_503/);
    const table = await cli(['status']);
    assert.match(table.stdout, /mailbox:gone@example\.com +delegated +needs-connect/);
    for (const out of [table.stdout, JSON.stringify(states)]) {
      for (const rt of server.currentRefreshTokens()) assert.ok(!out.includes(rt), 'status printed a refresh token');
    }
  });

  it('refuses delegated commands in app mode, and says how to fix a missing configuration', async () => {
    const app = makeTestConfig({ oauth: oauthSection(server, { mode: 'app' }) });
    const none = makeTestConfig({});
    try {
      const wrongMode = await runCli(['--config', app.file, 'oauth', 'connect', '--mailbox', 'a@example.com'], { cwd: app.dir });
      assert.equal(wrongMode.code, 2);
      assert.match(wrongMode.stderr, /oauth\.mode: oauth connect is for delegated mode/);
      const appStatus = JSON.parse((await runCli(['--config', app.file, 'oauth', 'status', '--json'], { cwd: app.dir })).stdout);
      assert.deepEqual(appStatus.map((s: { key: string; state: string }) => [s.key, s.state]), [['app', 'unknown']]);
      const missing = await runCli(['--config', none.file, 'oauth', 'status'], { cwd: none.dir });
      assert.equal(missing.code, 2);
      assert.match(missing.stderr, /oauth\.client_id: OAuth is not configured/);
    } finally {
      app.cleanup();
      none.cleanup();
    }
  });
});
