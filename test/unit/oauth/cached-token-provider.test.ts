import assert from 'node:assert/strict';
import { afterEach, beforeEach, describe, it, mock } from 'node:test';
import { silentEventLogger } from '../../../src/core/event-logger.js';
import type { AuditLog } from '../../../src/core/audit-log.js';
import { openSqliteDatabase, type SqliteDatabase } from '../../../src/credentials/sqlite-database.js';
import { SqliteTokenStateStore } from '../../../src/credentials/sqlite-token-state-store.js';
import { CachedTokenProvider } from '../../../src/oauth/cached-token-provider.js';

/**
 * The refresh-ahead schedule, to the millisecond: the clock is a variable and setTimeout is frozen (node:test mock
 * timers), so nothing here depends on how loaded the machine is. The integration test (token-provider.test.ts) shows
 * the same behaviour against a real OAuth server, without timing it.
 */
describe('CachedTokenProvider refresh-ahead schedule', () => {
  let now: number;
  let requests: number;
  let db: SqliteDatabase;
  let provider: CachedTokenProvider;
  const audit = { append: async () => {}, query: async () => [], prune: async () => 0, close: async () => {} } as AuditLog;
  const metrics = { request() {}, cacheHit() {}, invalidation() {} };
  const flush = async () => {
    for (let i = 0; i < 10; i++) await new Promise((r) => setImmediate(r));
  };
  /** Moves the clock and the frozen timers together. */
  const advance = async (ms: number) => {
    now += ms;
    mock.timers.tick(ms);
    await flush();
  };

  beforeEach(() => {
    mock.timers.enable({ apis: ['setTimeout'] });
    now = 1_000_000;
    requests = 0;
    db = openSqliteDatabase(':memory:');
    provider = new CachedTokenProvider(
      {
        source: {
          clientCredentials: async () => ({ accessToken: `token-${++requests}`, expiresInSeconds: 4, refreshToken: null }),
          refresh: async () => assert.fail('app mode never redeems a refresh token'),
        },
        store: new SqliteTokenStateStore(db),
        cipher: null,
        audit,
        metrics,
        log: silentEventLogger,
        clock: () => now,
      },
      { mode: 'app', marginMs: 1000, retryBaseMs: 1000, retryMaxMs: 60_000, lockTtlMs: 5000, peerWaitMs: 5000, forcedRefreshIntervalMs: 60_000 },
    );
  });

  afterEach(async () => {
    await provider.close();
    db.close();
    mock.timers.reset();
  });

  it('refreshes a token in use at 75% of its usable life, with no caller waiting', async () => {
    const first = await provider.getAccessToken('a@example.com');
    assert.equal(first.token, 'token-1');
    await advance(500);
    assert.equal((await provider.getAccessToken('a@example.com')).token, 'token-1', 'in use: served from memory');
    // Usable life: 4 s minus the 1 s margin = 3 s; 75% of it is 2.25 s after it was obtained.
    await advance(1749);
    assert.equal(requests, 1, 'not yet due');
    await advance(1);
    assert.equal(requests, 2, 'refreshed by the timer');
    const second = await provider.getAccessToken('a@example.com');
    assert.equal(second.token, 'token-2');
    assert.equal(second.cached, true);
    assert.equal(requests, 2);
  });

  it('leaves an unused token alone, and never hands it out inside the margin', async () => {
    await provider.getAccessToken('a@example.com');
    await advance(2250);
    assert.equal(requests, 1, 'not refreshed: nobody used it since it was obtained');
    await advance(750); // now exactly at expiry minus the margin
    const next = await provider.getAccessToken('a@example.com');
    assert.equal(next.token, 'token-2', 'a caller inside the margin gets a fresh token');
    assert.equal(requests, 2);
  });
});
