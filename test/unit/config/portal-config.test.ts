import assert from 'node:assert/strict';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, describe, it } from 'node:test';
import { loadConfig } from '../../../src/config/config-loader.js';

const dirs: string[] = [];
after(() => dirs.forEach((d) => rmSync(d, { recursive: true, force: true })));

function load(yaml: string, env: Record<string, string> = {}) {
  const dir = mkdtempSync(join(tmpdir(), 'passgate-portal-config-'));
  dirs.push(dir);
  writeFileSync(join(dir, 'passgate.yaml'), `security: { pepper: portal-config-pepper-0123 }\n${yaml}`, { mode: 0o600 });
  return loadConfig({ path: 'passgate.yaml', env, cwd: dir }).config;
}

const failsWith = (yaml: string, pattern: RegExp) =>
  assert.throws(() => load(yaml), (error: Error & { code?: string }) => {
    assert.equal(error.code, 'PG_CONFIG_INVALID');
    assert.match(error.message, pattern);
    return true;
  });

const ENABLED = `portal:
  enabled: true
  public_url: https://passgate.example.com
  oidc: { client_id: portal-app, client_secret: s3cret, allowed_domains: [example.com] }
`;

describe('portal config', () => {
  it('is off by default, and needs nothing then', () => {
    const config = load('');
    assert.equal(config.portal.enabled, false);
    assert.equal(config.portal.oidc.issuer, null);
    assert.equal(config.portal.oidc.admin_claim, 'roles');
  });

  it('takes the issuer from oauth.tenant (Entra ID v2.0) unless portal.oidc.issuer is set', () => {
    const config = load(`oauth: { tenant: contoso.onmicrosoft.com }\n${ENABLED}`);
    assert.equal(config.portal.oidc.issuer, 'https://login.microsoftonline.com/contoso.onmicrosoft.com/v2.0');
    const own = load(`${ENABLED.replace('client_id: portal-app', 'client_id: portal-app, issuer: https://id.example.com/')}`);
    assert.equal(own.portal.oidc.issuer, 'https://id.example.com');
  });

  it('names each missing key when enabled', () => {
    failsWith('portal: { enabled: true }', /portal\.public_url: required[\s\S]*portal\.oidc\.issuer: required[\s\S]*portal\.oidc\.client_id: required[\s\S]*portal\.oidc\.client_secret: required[\s\S]*portal\.oidc\.allowed_domains/);
  });

  it('refuses a plain-http public URL that is not loopback, and tls: none without trusted_proxies', () => {
    failsWith(`oauth: { tenant: contoso.onmicrosoft.com }\n${ENABLED.replace('https://passgate.example.com', 'http://passgate.example.com')}`, /portal\.public_url: must be https/);
    assert.equal(load(`oauth: { tenant: contoso.onmicrosoft.com }\n${ENABLED.replace('https://passgate.example.com', 'http://127.0.0.1:8080')}`).portal.public_url, 'http://127.0.0.1:8080');
    failsWith(`oauth: { tenant: contoso.onmicrosoft.com }\n${ENABLED}  tls: none\n`, /portal\.trusted_proxies: tls: none is only for a portal behind a TLS-terminating proxy/);
  });

  it('reads the client secret from a file or the environment, like every secret', () => {
    const config = load(`oauth: { tenant: contoso.onmicrosoft.com }\n${ENABLED.replace(', client_secret: s3cret', '')}`, { PASSGATE_PORTAL__OIDC__CLIENT_SECRET: 'from-env' });
    assert.equal(config.portal.oidc.client_secret, 'from-env');
  });
});
