import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import { runDoctor } from '../../src/doctor/doctor.js';
import { TestOidcProvider } from '../helpers/oidc-provider.js';
import { freePort } from '../helpers/redis-server.js';
import { makeTestConfig, type TestConfig } from '../helpers/test-config.js';

/**
 * `passgate doctor` on a portal: its OpenID provider (oidc-provider on loopback, standing in for Entra ID) is
 * discovered and the portal's client id and secret are proved by a token request for a code that cannot exist.
 */
describe('doctor: the portal sign-in check, against a real OpenID provider', () => {
  let provider: TestOidcProvider;
  const configs: TestConfig[] = [];
  const publicUrl = 'https://127.0.0.1:8443';

  before(async () => {
    provider = await new TestOidcProvider({ accounts: [], redirectUris: [`${publicUrl}/auth/callback`] }).start();
  });
  after(async () => {
    for (const tc of configs) tc.cleanup();
    await provider.stop();
  });

  async function portalCheck(oidc: Record<string, unknown>) {
    const tc = makeTestConfig({
      smtp: { enabled: false },
      imap: { enabled: false },
      ops: { enabled: false },
      portal: { enabled: true, host: '127.0.0.1', port: 0, public_url: publicUrl, oidc: { client_id: provider.clientId, client_secret: provider.clientSecret, allowed_domains: ['example.com'], issuer: provider.issuer, ...oidc } },
    });
    configs.push(tc);
    const report = await runDoctor({ load: { path: tc.file, env: {}, cwd: tc.dir } });
    const check = report.checks.find((c) => c.name === 'portal sign-in');
    assert.ok(check, JSON.stringify(report.checks));
    return { check, report };
  }

  it('passes with the right client, and names the redirect URI to register', async () => {
    const { check } = await portalCheck({});
    assert.equal(check.status, 'pass', JSON.stringify(check));
    assert.ok(check.detail.includes(`${publicUrl}/auth/callback`), check.detail);
    assert.ok(check.detail.includes(provider.issuer), check.detail);
  });

  it('fails on a wrong client secret, says which keys to fix, and never prints the secret', async () => {
    const wrong = 'not-the-portal-secret-0123456789';
    const { check, report } = await portalCheck({ client_secret: wrong });
    assert.equal(check.status, 'fail', JSON.stringify(check));
    assert.match(check.detail, /invalid_client/);
    assert.match(check.hint ?? '', /portal\.oidc\.client_secret/);
    assert.equal(report.exitCode, 1);
    assert.ok(!JSON.stringify(report).includes(wrong), 'the secret is in the report');
    assert.ok(!JSON.stringify(report).includes(provider.clientSecret), 'the real secret is in the report');
  });

  it('fails on an unknown client id', async () => {
    const { check } = await portalCheck({ client_id: 'someone-else' });
    assert.equal(check.status, 'fail', JSON.stringify(check));
    assert.match(check.detail, /refused the portal's client someone-else/);
  });

  it('fails, naming the issuer, when nothing answers there', async () => {
    const nowhere = `http://127.0.0.1:${await freePort()}`;
    const { check } = await portalCheck({ issuer: nowhere });
    assert.equal(check.status, 'fail', JSON.stringify(check));
    assert.ok(check.detail.startsWith(`no OpenID provider metadata at ${nowhere}`), check.detail);
    assert.match(check.hint ?? '', /openid-configuration/);
  });

  it('is skipped when the portal is off', async () => {
    const tc = makeTestConfig({ smtp: { enabled: false }, imap: { enabled: false }, ops: { enabled: false } });
    configs.push(tc);
    const report = await runDoctor({ load: { path: tc.file, env: {}, cwd: tc.dir } });
    assert.deepEqual(report.checks.find((c) => c.name === 'portal sign-in')?.status, 'skip');
  });
});
