import assert from 'node:assert/strict';
import { after, afterEach, before, describe, it } from 'node:test';
import { openApp, type App } from '../../src/app.js';
import { loadConfig } from '../../src/config/config-loader.js';
import { TokenError } from '../../src/core/token-provider.js';
import { createLogger } from '../../src/observability/logger.js';
import { TestOAuthServer } from '../helpers/oauth-server.js';
import { oauthSection, openOAuthTestApp, type OAuthTestApp } from '../helpers/oauth-test-app.js';
import { startRedis, type TestRedis } from '../helpers/redis-server.js';

const tokens = (app: App) => app.oauth!.tokens;

async function waitFor(what: string, check: () => boolean, timeoutMs = 10_000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!check()) {
    if (Date.now() > deadline) assert.fail(`${what}: not within ${timeoutMs} ms`);
    await new Promise((r) => setTimeout(r, 10));
  }
}

/** A second passgate process on the same configuration and store, as `passgate oauth connect` is. */
function openSecond(t: OAuthTestApp): Promise<App> {
  return openApp(loadConfig({ path: t.tc.file, env: {}, cwd: t.tc.dir }).config, { logger: createLogger('silent') });
}

describe('token state written by concurrent parties, against a real OAuth server', () => {
  let server: TestOAuthServer;
  let redis: TestRedis;
  let t: OAuthTestApp | undefined;
  let second: App | undefined;

  before(async () => {
    server = await new TestOAuthServer().start();
    redis = await startRedis();
  });
  after(async () => {
    await server.stop();
    await redis.close();
  });
  afterEach(async () => {
    await second?.close();
    second = undefined;
    await t?.close();
    t = undefined;
    server.delayMs = 0;
  });

  for (const backend of ['sqlite', 'redis'] as const) {
    const tree = (): Record<string, unknown> => ({
      oauth: oauthSection(server, { mode: 'delegated', request_timeout_seconds: 5 }),
      ...(backend === 'redis' ? { redis: { url: redis.url, key_prefix: `${redis.prefix}${Date.now()}:` } } : {}),
    });

    it(`${backend}: an invalid_grant answer does not clobber an \`oauth connect\` made while the refresh was in flight`, async () => {
      t = await openOAuthTestApp(tree());
      const mailbox = 'race@example.com';
      await tokens(t.app).saveRefreshToken(mailbox, server.mintRefreshToken(mailbox));
      server.revokeGrants(mailbox); // the stored refresh token is dead: its refresh will answer invalid_grant
      server.delayMs = 1500;
      const before = server.counts.refresh_token;
      const failing = tokens(t.app).getAccessToken(mailbox).then(
        () => assert.fail('the revoked grant was honoured'),
        (error: unknown) => error,
      );
      await waitFor('the refresh request reached the provider', () => server.counts.refresh_token === before + 1);
      // Meanwhile an operator connects the mailbox again from another process (the CLI), on the same store.
      second = await openSecond(t);
      await tokens(second).saveRefreshToken(mailbox, server.mintRefreshToken(mailbox));
      const error = await failing;
      assert.ok(error instanceof TokenError && error.kind === 'grant-lost', String(error));
      server.delayMs = 0;

      // The stale failure was not written: the new grant is stored, and both processes use it.
      const [status] = await tokens(t.app).status();
      assert.deepEqual([status!.mailbox, status!.state], [mailbox, 'ok']);
      const token = await tokens(t.app).getAccessToken(mailbox);
      assert.equal(server.introspect(token.token).subject, mailbox);
      assert.equal(server.counts.refresh_token, before + 2);
      assert.equal((await tokens(second).getAccessToken(mailbox)).token, token.token, 'the other process reads it from the store');
    });

    it(`${backend}: a refresh that succeeds while an operator connects the mailbox keeps the operator's grant stored`, async () => {
      t = await openOAuthTestApp(tree());
      const mailbox = 'swap@example.com';
      // Subjects tell the grants apart: the old grant's tokens say `old-consent`, the operator's say the mailbox.
      await tokens(t.app).saveRefreshToken(mailbox, server.mintRefreshToken('old-consent'));
      server.delayMs = 1500;
      const before = server.counts.refresh_token;
      const inFlight = tokens(t.app).getAccessToken(mailbox);
      await waitFor('the refresh request reached the provider', () => server.counts.refresh_token === before + 1);
      second = await openSecond(t);
      await tokens(second).saveRefreshToken(mailbox, server.mintRefreshToken(mailbox));
      const used = await inFlight;
      server.delayMs = 0;
      assert.equal(server.introspect(used.token).subject, 'old-consent', 'the token obtained is still handed out');
      // The other process holds nothing: it reads the store, which has the operator's grant, and redeems that.
      const fromStore = await tokens(second).getAccessToken(mailbox);
      assert.equal(server.introspect(fromStore.token).subject, mailbox);
    });

    it(`${backend}: without a concurrent connect, invalid_grant still marks the mailbox needs-connect`, async () => {
      t = await openOAuthTestApp(tree());
      const mailbox = 'lost@example.com';
      await tokens(t.app).saveRefreshToken(mailbox, server.mintRefreshToken(mailbox));
      server.revokeGrants(mailbox);
      await assert.rejects(tokens(t.app).getAccessToken(mailbox), (e: unknown) => e instanceof TokenError && e.kind === 'grant-lost');
      const [status] = await tokens(t.app).status();
      assert.equal(status!.state, 'needs-connect');
    });
  }

  it('redis, two instances: one invalidation clears the shared token, and the other instance picks up the fresh one', async () => {
    t = await openOAuthTestApp({ oauth: oauthSection(server), redis: { url: redis.url, key_prefix: `${redis.prefix}inv:` } });
    second = await openSecond(t);
    const first = await tokens(t.app).getAccessToken('a@example.com');
    assert.equal((await tokens(second).getAccessToken('b@example.com')).token, first.token);
    const before = server.counts.client_credentials;
    server.forgetAccessTokens();
    // Instance one's upstream refused it: dropped here and in Redis, and a fresh one fetched and shared.
    assert.equal(await tokens(t.app).invalidateAccessToken('a@example.com', first.token, 'smtp-refused'), true);
    const fresh = await tokens(t.app).getAccessToken('a@example.com');
    assert.notEqual(fresh.token, first.token);
    assert.equal(fresh.cached, false);
    // Instance two still holds the old one in memory; its own refusal drops it and it reads the fresh one from Redis.
    assert.equal(await tokens(second).invalidateAccessToken('b@example.com', first.token, 'imap-refused'), true);
    const picked = await tokens(second).getAccessToken('b@example.com');
    assert.equal(picked.token, fresh.token);
    assert.equal(picked.cached, true);
    assert.equal(server.counts.client_credentials, before + 1, 'one token request for both instances');
    // A stale invalidation (of a token already replaced) drops nothing and forces nothing.
    assert.equal(await tokens(t.app).invalidateAccessToken('a@example.com', first.token, 'smtp-refused'), true);
    assert.equal((await tokens(t.app).getAccessToken('a@example.com')).token, fresh.token);
    // Within the window, the fresh token's refusal is the verdict: not dropped, not refreshed again.
    assert.equal(await tokens(t.app).invalidateAccessToken('a@example.com', fresh.token, 'smtp-refused'), false);
    assert.equal((await tokens(t.app).getAccessToken('a@example.com')).token, fresh.token);
    assert.equal(server.counts.client_credentials, before + 1);
  });
});
