import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import { runCli } from '../helpers/run-cli.js';
import { makeTestConfig, type TestConfig } from '../helpers/test-config.js';

describe('passgate app-password: setup sheet, turn off / on, edit, and exit codes that say what happened', () => {
  let tc: TestConfig;
  const cli = (...args: string[]) => runCli(['--config', tc.file, ...args], { cwd: tc.dir });
  before(() => {
    tc = makeTestConfig({
      data_dir: 'data',
      app_passwords: { setup_host: 'mail.example.com' },
      smtp: {
        listeners: [
          { name: 'submission', host: '127.0.0.1', port: 2587, tls: 'starttls' },
          { name: 'lan', host: '127.0.0.1', port: 2525, tls: 'none', plaintext_auth_from: ['10.0.0.0/8'] },
        ],
      },
      imap: { enabled: false },
    });
  });
  after(() => tc.cleanup());

  /** A password of its own for each test (each test stands alone); its id. */
  const created = async (user: string, name: string) => {
    const out = await cli('app-password', 'create', '--user', user, '--name', name, '--json');
    assert.equal(out.code, 0, out.stderr);
    return (JSON.parse(out.stdout) as { id: string }).id;
  };
  const audited = async (user: string) => JSON.parse((await cli('audit', '--json', '--user', user)).stdout).map((e: { action: string }) => e.action) as string[];

  it('create prints the configured host, ports and TLS modes per scope, and a note on the certificate', async () => {
    const out = await cli('app-password', 'create', '--user', 'desk@example.com', '--name', 'Desk scanner', '--expires', '1mo');
    assert.equal(out.code, 0, out.stderr);
    assert.match(out.stdout, /^ {2}SMTP: +mail\.example\.com, port 2587 with STARTTLS or port 2525 without encryption \(no encryption; accepted only from 10\.0\.0\.0\/8\), authentication on$/m);
    assert.match(out.stdout, /^ {2}IMAP: +IMAP is not served by this passgate \(imap\.enabled: false\)$/m);
    assert.match(out.stdout, /^ {2}POP3: +POP3 is not served by this passgate \(pop3\.enabled: false\)$/m);
    assert.match(out.stdout, /certificate: This passgate uses a self-signed certificate/);
    assert.match(out.stdout, /expires: +\d{4}-\d\d-\d\d \d\d:\d\dZ \(understood "1mo" as 1 month from now\)/);
    assert.doesNotMatch(out.stdout, /587 with STARTTLS or 465|993/, 'no port that is not configured');
    assert.match(out.stdout, /\(id ap_[a-z2-7]{16}\)/);
    const json = JSON.parse((await cli('app-password', 'create', '--user', 'desk@example.com', '--name', 'Other', '--json')).stdout);
    assert.deepEqual(json.setup.scopes.map((s: { protocol: string; servers: { port: number; tls: string }[] }) => [s.protocol, s.servers.map((x) => `${x.port} ${x.tls}`)]), [
      ['smtp', ['2587 STARTTLS', '2525 none']],
      ['imap', []],
      ['pop3', []],
    ]);
  });

  it('--check-from-header on|off|default sets the From header policy (issue 17), and show says it', async () => {
    const out = await cli('app-password', 'create', '--user', 'from@example.com', '--name', 'From', '--check-from-header', 'on', '--json');
    assert.equal(out.code, 0, out.stderr);
    const created = JSON.parse(out.stdout);
    assert.equal(created.policy.checkFromHeader, true);
    const fromId: string = created.id;
    assert.match((await cli('app-password', 'show', fromId)).stdout, /From header: checked/);
    assert.equal((await cli('app-password', 'edit', fromId, '--check-from-header', 'default')).code, 0);
    assert.match((await cli('app-password', 'show', fromId)).stdout, /From header: as smtp\.check_from_header/);
    const bad = await cli('app-password', 'edit', fromId, '--check-from-header', 'yes');
    assert.equal(bad.code, 2);
    assert.match(bad.stderr, /invalid --check-from-header "yes": use on, off or default/);
  });

  it('refuses an ambiguous unit and says what it would take', async () => {
    const out = await cli('app-password', 'create', '--user', 'desk@example.com', '--name', 'n', '--expires', '1m');
    assert.deepEqual([out.code, out.stdout], [2, '']);
    assert.match(out.stderr, /invalid --expires "1m": "m" could be minutes or months: write 1min or 1mo/);
  });

  it('turn-off / turn-on (and their aliases disable / enable) change the state once, then exit 3: nothing changed', async () => {
    const id = await created('toggle@example.com', 'Desk scanner');
    const off = await cli('app-password', 'turn-off', id);
    assert.deepEqual([off.code, off.stdout], [0, `turned off ${id} ("Desk scanner", toggle@example.com)\n`]);
    const again = await cli('app-password', 'disable', id);
    assert.equal(again.code, 3, again.stderr);
    assert.match(again.stdout, /was already off \(since .*\); nothing changed/);
    assert.match((await cli('app-password', 'show', id)).stdout, /status: +off\n[\s\S]*turned off: +\d{4}/);
    assert.match((await cli('app-password', 'list', '--status', 'off')).stdout, new RegExp(`${id} .* off `));
    assert.equal((await cli('app-password', 'enable', id)).code, 0);
    const on = await cli('app-password', 'turn-on', id);
    assert.deepEqual([on.code, /was already on; nothing changed/.test(on.stdout)], [3, true]);
    const actions = await audited('toggle@example.com');
    for (const action of ['app-password.turn-off', 'app-password.turn-on']) assert.ok(actions.includes(action), action);
  });

  it('edit changes name, expiry, networks and policy without a new password, and says what it understood', async () => {
    const id = await created('edit@example.com', 'Desk scanner');
    const out = await cli('app-password', 'edit', id, '--name', 'Desk scanner (2nd floor)', '--expires', 'never', '--allow-from', '10.1.0.0/16', '--max-messages-per-day', '50');
    assert.equal(out.code, 0, out.stderr);
    assert.match(out.stdout, /^expires: never \(understood "never" as never\)$/m);
    const shown = JSON.parse((await cli('app-password', 'show', id, '--json')).stdout);
    assert.deepEqual([shown.name, shown.expiresAt, shown.allowedNetworks, shown.policy.maxMessagesPerDay], ['Desk scanner (2nd floor)', null, ['10.1.0.0/16'], 50]);
    const cleared = await cli('app-password', 'edit', id, '--allow-from', 'any', '--max-messages-per-day', 'none');
    assert.equal(cleared.code, 0, cleared.stderr);
    const after = JSON.parse((await cli('app-password', 'show', id, '--json')).stdout);
    assert.deepEqual([after.allowedNetworks, after.policy.maxMessagesPerDay], [[], null]);
    const nothing = await cli('app-password', 'edit', id);
    assert.equal(nothing.code, 2);
    assert.match(nothing.stderr, /nothing to change/);
    assert.ok((await audited('edit@example.com')).includes('app-password.edit'));
  });

  it('revoke says when it was already revoked (exit 3); revoke-all with nothing to revoke says why (exit 3)', async () => {
    const id = await created('revoker@example.com', 'Desk scanner (2nd floor)');
    await created('revoker@example.com', 'Other');
    assert.equal((await cli('app-password', 'revoke', id)).code, 0);
    const again = await cli('app-password', 'revoke', id);
    assert.equal(again.code, 3);
    assert.match(again.stdout, new RegExp(`${id} \\("Desk scanner \\(2nd floor\\)", revoker@example\\.com\\) was already revoked \\(at .*\\); nothing changed`));
    const on = await cli('app-password', 'turn-on', id);
    assert.equal(on.code, 2);
    assert.match(on.stderr, /is revoked, which is for good/);
    const nobody = await cli('app-password', 'revoke-all', '--user', 'nobody@example.com');
    assert.deepEqual([nobody.code, nobody.stdout], [3, 'revoked 0: nobody@example.com has no app passwords\n']);
    assert.equal((await cli('app-password', 'revoke-all', '--user', 'revoker@example.com')).code, 0);
    const done = await cli('app-password', 'revoke-all', '--user', 'revoker@example.com');
    assert.deepEqual([done.code, done.stdout], [3, 'revoked 0: all 2 app passwords of revoker@example.com were already revoked\n']);
    const actions = await audited('revoker@example.com');
    for (const action of ['app-password.revoke', 'app-password.revoke-all']) assert.ok(actions.includes(action), action);
  });
});
