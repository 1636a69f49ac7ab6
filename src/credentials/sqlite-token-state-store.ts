import type { StoredTokenState, TokenStateStore } from '../core/token-state-store.js';
import type { SqliteDatabase } from './sqlite-database.js';

/**
 * Token state in the embedded store: one row per key holding the whole (already sealed) state as JSON,
 * replaced in a single statement, so a rotated refresh token is written atomically with its access token.
 */
export class SqliteTokenStateStore implements TokenStateStore {
  private readonly stmt;

  constructor(db: SqliteDatabase) {
    this.stmt = {
      get: db.prepare<[string], { state: string }>('SELECT state FROM oauth_tokens WHERE key = ?'),
      put: db.prepare<[string, string]>('INSERT INTO oauth_tokens (key, state) VALUES (?, ?) ON CONFLICT (key) DO UPDATE SET state = excluded.state'),
      // One statement, so atomic against other processes on the same file (the CLI): insert when absent and
      // null was expected, update only while the field still holds the expected sealed text (IS: null-safe).
      putIf: db.prepare<[{ key: string; state: string; path: string; expected: string | null }]>(
        'INSERT INTO oauth_tokens (key, state) SELECT @key, @state ' +
          'WHERE @expected IS NULL OR EXISTS (SELECT 1 FROM oauth_tokens WHERE key = @key) ' +
          'ON CONFLICT (key) DO UPDATE SET state = excluded.state WHERE json_extract(oauth_tokens.state, @path) IS @expected',
      ),
      list: db.prepare<[], { state: string }>('SELECT state FROM oauth_tokens ORDER BY key'),
      delete: db.prepare<[string]>('DELETE FROM oauth_tokens WHERE key = ?'),
    };
  }

  async get(key: string): Promise<StoredTokenState | null> {
    const row = this.stmt.get.get(key);
    return row ? (JSON.parse(row.state) as StoredTokenState) : null;
  }

  async put(state: StoredTokenState): Promise<void> {
    this.stmt.put.run(state.key, JSON.stringify(state));
  }

  async putIf(state: StoredTokenState, field: 'sealedRefreshToken' | 'sealedAccessToken', expected: string | null): Promise<boolean> {
    return this.stmt.putIf.run({ key: state.key, state: JSON.stringify(state), path: `$.${field}`, expected }).changes === 1;
  }

  async list(): Promise<StoredTokenState[]> {
    return this.stmt.list.all().map((row) => JSON.parse(row.state) as StoredTokenState);
  }

  async delete(key: string): Promise<void> {
    this.stmt.delete.run(key);
  }

  async tryLock(): Promise<() => Promise<void>> {
    // One process owns the embedded store; the provider's single-flight already allows one refresh per key.
    return async () => {};
  }
}
