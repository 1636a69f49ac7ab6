import assert from 'node:assert/strict';
import { after, afterEach, before, describe, it } from 'node:test';
import type { App } from '../../src/app.js';
import { EXCHANGE_ONLINE_AUDIENCE } from '../../src/core/token-provider.js';
import { TestOAuthServer } from '../helpers/oauth-server.js';
import { oauthSection, openOAuthTestApp, type OAuthTestApp } from '../helpers/oauth-test-app.js';

const GRAPH = 'https://graph.microsoft.com/.default';
const tokens = (app: App) => app.oauth!.tokens;

describe('token provider per audience (real OAuth server on loopback)', () => {
  let server: TestOAuthServer;
  let t: OAuthTestApp | undefined;

  before(async () => {
    server = await new TestOAuthServer().start();
  });
  after(async () => server.stop());
  afterEach(async () => {
    await t?.close();
    t = undefined;
  });
  const reset = () => Object.keys(server.counts).forEach((k) => (server.counts[k as keyof typeof server.counts] = 0));

  it('asks for each audience with its own scope, and caches and stores each under its own key', async () => {
    reset();
    t = await openOAuthTestApp({ oauth: oauthSection(server) });
    const exchange = await tokens(t.app).getAccessToken('a@example.com');
    const graph = await tokens(t.app).getAccessToken('a@example.com', GRAPH);
    assert.notEqual(graph.token, exchange.token, 'a Graph token never stands in for the IMAP/SMTP one');
    // The default audience asks for the configured scopes (as before audiences existed); another for itself.
    assert.equal(server.introspect(exchange.token).scope, 'mail');
    assert.equal(server.introspect(graph.token).scope, GRAPH);
    for (let i = 0; i < 10; i++) {
      assert.equal((await tokens(t.app).getAccessToken(`u${i}@example.com`, GRAPH)).token, graph.token);
      assert.equal((await tokens(t.app).getAccessToken(`u${i}@example.com`, EXCHANGE_ONLINE_AUDIENCE)).token, exchange.token);
    }
    assert.equal(server.counts.client_credentials, 2);
    const keys = (await t.app.tokenStates.list()).map((s) => s.key).sort();
    assert.deepEqual(keys, ['app', `${GRAPH}|app`]);
    const status = await tokens(t.app).status();
    assert.deepEqual(status.map((s) => [s.key, s.audience, s.state]).sort(), [['app', EXCHANGE_ONLINE_AUDIENCE, 'ok'], [`${GRAPH}|app`, GRAPH, 'ok']]);
  });

  it('token state stored under the key of before (`app`) keeps serving the default audience after a restart', async () => {
    reset();
    t = await openOAuthTestApp({ oauth: oauthSection(server) });
    const before = await tokens(t.app).getAccessToken('a@example.com');
    assert.ok(await t.app.tokenStates.get('app'), 'stored under the bare key, as every earlier version did');
    await t.restart();
    const after = await tokens(t.app).getAccessToken('a@example.com');
    assert.equal(after.token, before.token);
    assert.equal(after.cached, true);
    assert.equal(server.counts.client_credentials, 1, 'no new request: the stored state was used');
  });

  it('a refused token is dropped for its audience only', async () => {
    reset();
    t = await openOAuthTestApp({ oauth: oauthSection(server) });
    const exchange = await tokens(t.app).getAccessToken('a@example.com');
    const graph = await tokens(t.app).getAccessToken('a@example.com', GRAPH);
    assert.equal(await tokens(t.app).invalidateAccessToken('a@example.com', graph.token, 'graph-refused', GRAPH), true);
    const fresh = await tokens(t.app).getAccessToken('a@example.com', GRAPH);
    assert.notEqual(fresh.token, graph.token);
    assert.equal((await tokens(t.app).getAccessToken('a@example.com')).token, exchange.token);
    assert.equal(server.counts.client_credentials, 3);
  });
});
