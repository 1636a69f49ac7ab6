import assert from 'node:assert/strict';
import { existsSync, statSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { stringify } from 'yaml';
import { openApp } from '../../src/app.js';
import { CLI_ACTOR } from '../../src/core/actor.js';
import { createLogger } from '../../src/observability/logger.js';
import { runCli } from '../helpers/run-cli.js';
import { FAST_ARGON2, makeTestConfig, type TestConfig } from '../helpers/test-config.js';

// Promises of docs/security.md and the config reference (issue 21): files holding hashes are created 0600, and a
// listener without TLS that names no plaintext networks stops `serve` before anything listens.
describe('files passgate writes, and a listener it refuses', () => {
  let tc: TestConfig;
  before(() => {
    tc = makeTestConfig({ data_dir: 'state' });
  });
  after(() => tc.cleanup());

  it('creates the embedded store 0600 in a 0700 folder, and store export --out writes a new 0600 file', async () => {
    const app = await openApp(tc.config, { logger: createLogger('silent') });
    await app.admin.appPasswords.create(CLI_ACTOR, { username: 'files@example.com', name: 'Printer' });
    await app.close();
    const store = join(tc.dir, 'state', 'passgate.db');
    assert.equal(statSync(store).mode & 0o777, 0o600);
    assert.equal(statSync(join(tc.dir, 'state')).mode & 0o777, 0o700);

    const out = join(tc.dir, 'export.jsonl');
    const exported = await runCli(['--config', tc.file, 'store', 'export', '--out', out], { cwd: tc.dir });
    assert.equal(exported.code, 0, exported.stderr);
    assert.equal(statSync(out).mode & 0o777, 0o600);
  });

  it('serve refuses a tls: none listener without plaintext_auth_from, naming the key, before it creates anything', async () => {
    const file = join(tc.dir, 'open-listener.yaml');
    writeFileSync(
      file,
      stringify({
        log: { level: 'silent' },
        data_dir: 'refused',
        security: { pepper: 'test-pepper-0123456789abcdef', argon2: FAST_ARGON2 },
        smtp: { listeners: [{ name: 'lan', host: '127.0.0.1', port: 2525, tls: 'none' }] },
        imap: { enabled: false },
      }),
      { mode: 0o600 },
    );
    const served = await runCli(['--config', file, 'serve'], { cwd: tc.dir });
    assert.equal(served.code, 2, served.stderr);
    assert.match(served.stderr, /smtp\.listeners\.0\.plaintext_auth_from/);
    assert.match(served.stderr, /plaintext_auth_from \(the networks whose devices may log in without TLS\)/);
    assert.equal(existsSync(join(tc.dir, 'refused')), false, 'nothing was created');
  });
});
