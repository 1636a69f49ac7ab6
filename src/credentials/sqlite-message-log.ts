import type { Clock } from '../core/clock.js';
import type { MessageLog, MessageQuery, MessageRecord } from '../core/message-log.js';
import type { SqliteDatabase } from './sqlite-database.js';

const PRUNE_EVERY = 1000;

/**
 * The message trace's own table, created where it is first needed: a table no older passgate reads, so it needs
 * no schema version of its own (an older passgate leaves it alone).
 */
const CREATE = `CREATE TABLE IF NOT EXISTS message_log (
    seq INTEGER PRIMARY KEY AUTOINCREMENT,
    at INTEGER NOT NULL,
    username TEXT NOT NULL,
    app_password_id TEXT NOT NULL,
    result TEXT NOT NULL,
    record TEXT NOT NULL
  );
  CREATE INDEX IF NOT EXISTS message_log_at ON message_log (at);
  CREATE INDEX IF NOT EXISTS message_log_username_at ON message_log (username, at);
  CREATE INDEX IF NOT EXISTS message_log_app_password_at ON message_log (app_password_id, at);`;

/**
 * The message trace in the embedded store: one row per record (the columns filtered on, and the record as JSON).
 * Prunes itself by age, then by count, on open and every thousand appends, as the sign-in log does.
 */
export class SqliteMessageLog implements MessageLog {
  private readonly insertStmt;
  private readonly pruneStmt;
  private readonly trimStmt;
  private readonly present: boolean;
  private appendsSincePrune = 0;

  constructor(
    private readonly db: SqliteDatabase,
    private readonly retentionMs: number,
    private readonly clock: Clock,
    private readonly maxEntries = 1_000_000,
  ) {
    // A read-only store (passgate doctor) is read as it is: without the table, there is nothing to read.
    if (!db.readonly) db.exec(CREATE);
    this.present = db.prepare("SELECT 1 FROM sqlite_master WHERE type = 'table' AND name = 'message_log'").get() !== undefined;
    if (!this.present) {
      this.insertStmt = this.pruneStmt = this.trimStmt = null;
      return;
    }
    this.insertStmt = db.prepare<[number, string, string, string, string]>(
      'INSERT INTO message_log (at, username, app_password_id, result, record) VALUES (?, ?, ?, ?, ?)',
    );
    this.pruneStmt = db.prepare<[number]>('DELETE FROM message_log WHERE at < ?');
    this.trimStmt = db.prepare<[number]>('DELETE FROM message_log WHERE seq <= (SELECT MAX(seq) FROM message_log) - ?');
    if (!db.readonly) this.pruneStmt.run(this.clock() - this.retentionMs);
  }

  async append(r: MessageRecord): Promise<void> {
    if (!this.insertStmt) throw new Error('the message trace is not in this read-only store');
    this.insertStmt.run(r.at, r.username, r.appPasswordId, r.result, JSON.stringify(r));
    if (++this.appendsSincePrune >= PRUNE_EVERY) await this.prune();
  }

  async query(q: MessageQuery): Promise<MessageRecord[]> {
    if (!this.present) return [];
    const where = ['at >= ?'];
    const args: (string | number)[] = [Math.max(q.since ?? 0, this.clock() - this.retentionMs)];
    const add = (clause: string, value: string | number | undefined) => {
      if (value === undefined) return;
      where.push(clause);
      args.push(value);
    };
    add('at < ?', q.until);
    add('username = ?', q.username);
    add('app_password_id = ?', q.appPasswordId);
    add('result = ?', q.result);
    // The protocol is not a column: messages are SMTP only today, and a filter on it is rare.
    add("json_extract(record, '$.protocol') = ?", q.protocol);
    const rows = this.db
      .prepare<(string | number)[], { record: string }>(`SELECT record FROM message_log WHERE ${where.join(' AND ')} ORDER BY at DESC, seq DESC LIMIT ?`)
      .all(...args, q.limit);
    return rows.map((row) => JSON.parse(row.record) as MessageRecord);
  }

  async prune(): Promise<number> {
    this.appendsSincePrune = 0;
    if (!this.pruneStmt || !this.trimStmt) return 0;
    return this.pruneStmt.run(this.clock() - this.retentionMs).changes + this.trimStmt.run(this.maxEntries).changes;
  }

  async close(): Promise<void> {}
}
