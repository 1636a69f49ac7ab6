import type { Clock } from '../core/clock.js';
import { GatewayError } from '../core/gateway-error.js';
import { webSessionKey, type WebSession, type WebSessionStore } from '../core/web-session-store.js';
import type { SqliteDatabase } from './sqlite-database.js';

/** Portal sessions in the embedded store's `web_sessions` table (one instance; the file is shared with the rest). */
export class SqliteWebSessionStore implements WebSessionStore {
  private readonly stmt;

  constructor(
    db: SqliteDatabase,
    private readonly clock: Clock,
  ) {
    this.stmt = {
      get: db.prepare<[string, number], { session: string }>('SELECT session FROM web_sessions WHERE id_hash = ? AND expires_at > ?'),
      set: db.prepare<[string, string, string, number]>('INSERT OR REPLACE INTO web_sessions (id_hash, username, session, expires_at) VALUES (?, ?, ?, ?)'),
      destroy: db.prepare<[string]>('DELETE FROM web_sessions WHERE id_hash = ?'),
      destroyAllFor: db.prepare<[string]>('DELETE FROM web_sessions WHERE username = ?'),
      prune: db.prepare<[number]>('DELETE FROM web_sessions WHERE expires_at <= ?'),
    };
  }

  async get(id: string): Promise<WebSession | null> {
    return this.guard('get', () => {
      const row = this.stmt.get.get(webSessionKey(id), this.clock());
      return row ? (JSON.parse(row.session) as WebSession) : null;
    });
  }

  async set(id: string, session: WebSession, ttlMs: number): Promise<void> {
    return this.guard('set', () => {
      const now = this.clock();
      // Expired rows go when sessions are written: the table holds about the live sessions, without a timer.
      this.stmt.prune.run(now);
      this.stmt.set.run(webSessionKey(id), session.username.toLowerCase(), JSON.stringify(session), now + ttlMs);
    });
  }

  async destroy(id: string): Promise<void> {
    return this.guard('destroy', () => void this.stmt.destroy.run(webSessionKey(id)));
  }

  async destroyAllFor(username: string): Promise<number> {
    return this.guard('destroy-all', () => this.stmt.destroyAllFor.run(username.trim().toLowerCase()).changes);
  }

  private guard<T>(operation: string, fn: () => T): T {
    try {
      return fn();
    } catch (cause) {
      throw new GatewayError('PG_STORE_UNAVAILABLE', `embedded store: web session ${operation} failed: ${(cause as Error).message}`, { cause });
    }
  }
}
