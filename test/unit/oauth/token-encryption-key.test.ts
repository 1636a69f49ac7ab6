import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { afterEach, beforeEach, describe, it } from 'node:test';
import type { AuditLog } from '../../../src/core/audit-log.js';
import { silentEventLogger } from '../../../src/core/event-logger.js';
import { openSqliteDatabase, type SqliteDatabase } from '../../../src/credentials/sqlite-database.js';
import { SqliteTokenStateStore } from '../../../src/credentials/sqlite-token-state-store.js';
import { CachedTokenProvider } from '../../../src/oauth/cached-token-provider.js';
import { TokenCipher } from '../../../src/oauth/token-cipher.js';

// The config reference's promise for oauth.token_encryption_key (issue 21): without it, refresh tokens are refused
// and access tokens stay in the memory of the process that fetched them; with it, both are stored sealed.
describe('without oauth.token_encryption_key', () => {
  let db: SqliteDatabase;
  let requests: number;
  const audit = { append: async () => {}, query: async () => [], prune: async () => 0, close: async () => {} } as AuditLog;
  const providers: CachedTokenProvider[] = [];

  const provider = (mode: 'app' | 'delegated', cipher: TokenCipher | null) => {
    const p = new CachedTokenProvider(
      {
        source: {
          clientCredentials: async () => ({ accessToken: `token-${++requests}`, expiresInSeconds: 3600, refreshToken: null }),
          refresh: async () => ({ accessToken: `token-${++requests}`, expiresInSeconds: 3600, refreshToken: 'rotated' }),
        },
        store: new SqliteTokenStateStore(db),
        cipher,
        audit,
        metrics: { request() {}, cacheHit() {}, invalidation() {} },
        log: silentEventLogger,
        clock: () => 1_000_000,
      },
      { mode, marginMs: 1000, retryBaseMs: 1000, retryMaxMs: 60_000, lockTtlMs: 5000, peerWaitMs: 5000, forcedRefreshIntervalMs: 60_000 },
    );
    providers.push(p);
    return p;
  };

  beforeEach(() => {
    db = openSqliteDatabase(':memory:');
    requests = 0;
  });
  afterEach(async () => {
    for (const p of providers.splice(0)) await p.close();
    db.close();
  });

  it('keeps the access token in memory only: nothing sealed is stored, another instance fetches its own', async () => {
    const first = provider('app', null);
    assert.equal((await first.getAccessToken('a@example.com')).token, 'token-1');
    const stored = await new SqliteTokenStateStore(db).get(first.keyFor('a@example.com'));
    assert.equal(stored?.sealedAccessToken ?? null, null, 'no access token in the store');
    assert.equal((await provider('app', null).getAccessToken('a@example.com')).token, 'token-2', 'the other instance could not reuse it');
  });

  it('with the key, the access token is stored sealed and another instance reuses it (the contrast)', async () => {
    const cipher = TokenCipher.fromConfig(randomBytes(32).toString('base64'));
    const first = provider('app', cipher);
    await first.getAccessToken('a@example.com');
    const stored = await new SqliteTokenStateStore(db).get(first.keyFor('a@example.com'));
    assert.ok(stored?.sealedAccessToken && !stored.sealedAccessToken.includes('token-1'), 'sealed, not in clear');
    assert.equal((await provider('app', cipher).getAccessToken('a@example.com')).token, 'token-1');
    assert.equal(requests, 1);
  });

  it('refuses to store a refresh token, naming the key, and stores nothing', async () => {
    const delegated = provider('delegated', null);
    await assert.rejects(delegated.saveRefreshToken('a@example.com', 'refresh-secret'), /oauth\.token_encryption_key: required to store refresh tokens/);
    assert.deepEqual(await new SqliteTokenStateStore(db).list(), []);
  });
});
