import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import { TestOAuthServer } from '../helpers/oauth-server.js';
import { oauthSection } from '../helpers/oauth-test-app.js';
import { runCli } from '../helpers/run-cli.js';
import { makeTestConfig, type TestConfig } from '../helpers/test-config.js';

// `passgate oauth status` is what a cron job or a monitoring check runs: its exit status must say whether a token
// needs an operator (0 all good, 1 needs attention), not only its table.

describe('passgate oauth status: the exit status carries the verdict (CLI, real OAuth server)', () => {
  let server: TestOAuthServer;
  let tc: TestConfig;
  const cli = (args: string[], input?: string) => runCli(['--config', tc.file, 'oauth', ...args], { cwd: tc.dir, ...(input !== undefined ? { input } : {}) });

  before(async () => {
    server = await new TestOAuthServer().start();
    tc = makeTestConfig({ oauth: oauthSection(server, { mode: 'delegated' }) });
  });
  after(async () => {
    await server.stop();
    tc.cleanup();
  });

  it('exits 0 with nothing connected and with every mailbox ok', async () => {
    assert.equal((await cli(['status'])).code, 0);
    const imported = await cli(['import', '--mailbox', 'ok@example.com'], server.mintRefreshToken('ok@example.com'));
    assert.equal(imported.code, 0, imported.stderr);
    const table = await cli(['status']);
    assert.equal(table.code, 0, table.stderr);
    assert.match(table.stdout, /mailbox:ok@example\.com +delegated +ok/);
    assert.equal((await cli(['status', '--json'])).code, 0);
  });

  it('exits 1 when a mailbox needs a connect, still printing every state, and 0 again once it is gone', async () => {
    // A mailbox that is fine beside the broken one (imported here too: each test stands alone; once is enough).
    if (!(await cli(['status'])).stdout.includes('mailbox:ok@example.com')) {
      assert.equal((await cli(['import', '--mailbox', 'ok@example.com'], server.mintRefreshToken('ok@example.com'))).code, 0);
    }
    assert.equal((await cli(['import', '--mailbox', 'gone@example.com'], 'rt-not-a-real-token')).code, 1);
    const table = await cli(['status']);
    assert.equal(table.code, 1);
    assert.match(table.stdout, /mailbox:gone@example\.com +delegated +needs-connect/);
    assert.match(table.stdout, /mailbox:ok@example\.com +delegated +ok/);
    assert.equal(table.stderr, '');
    const json = await cli(['status', '--json']);
    assert.equal(json.code, 1);
    assert.deepEqual(
      (JSON.parse(json.stdout) as { mailbox: string; state: string }[]).map((s) => [s.mailbox, s.state]),
      [
        ['gone@example.com', 'needs-connect'],
        ['ok@example.com', 'ok'],
      ],
    );
    assert.equal((await cli(['disconnect', '--mailbox', 'gone@example.com'])).code, 0);
    assert.equal((await cli(['status'])).code, 0);
  });

  it('exits 1 when a token request is failing', async () => {
    server.failNext(1, { status: 503, body: 'down' });
    assert.equal((await cli(['import', '--mailbox', 'down@example.com'], server.mintRefreshToken('down@example.com'))).code, 1);
    const table = await cli(['status']);
    assert.equal(table.code, 1);
    assert.match(table.stdout, /mailbox:down@example\.com +delegated +failing/);
  });

  it('documents the exit status in --help', async () => {
    const help = await cli(['status', '--help']);
    assert.equal(help.code, 0);
    assert.match(help.stdout, /Exit status: 0 when every token is ok/);
    assert.match(help.stdout, /1 when any is needs-connect/);
  });
});
