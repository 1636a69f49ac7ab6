import type { PepperCheckStore } from '../core/pepper-check-store.js';
import type { SqliteDatabase } from './sqlite-database.js';

const KEY = 'pepper_check';

/** The pepper check in the embedded store's `meta` table (schema version 4). */
export class SqlitePepperCheckStore implements PepperCheckStore {
  constructor(private readonly db: SqliteDatabase) {}

  async read(): Promise<string | null> {
    const row = this.db.prepare('SELECT value FROM meta WHERE key = ?').get(KEY) as { value: string } | undefined;
    return row?.value ?? null;
  }

  async recordIfAbsent(check: string): Promise<string> {
    this.db.prepare('INSERT OR IGNORE INTO meta (key, value) VALUES (?, ?)').run(KEY, check);
    return (await this.read())!;
  }
}
