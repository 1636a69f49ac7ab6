import type { AuditAction, AuditEvent, AuditLog, AuditQuery, AuditReason } from '../core/audit-log.js';
import type { Clock } from '../core/clock.js';
import type { Protocol } from '../core/protocol.js';
import type { SqliteDatabase } from './sqlite-database.js';

interface Row {
  at: number;
  action: string;
  protocol: string | null;
  username: string;
  client_ip: string | null;
  app_password_id: string | null;
  app_password_name: string | null;
  reason: string;
  detail: string | null;
}

const PRUNE_EVERY = 1000;

/** The sign-in log in the embedded store; prunes itself (by age, then by count) every thousand appends and on open. */
export class SqliteAuditLog implements AuditLog {
  private readonly insertStmt;
  private readonly pruneStmt;
  private appendsSincePrune = 0;

  private readonly trimStmt;

  constructor(
    private readonly db: SqliteDatabase,
    private readonly retentionMs: number,
    private readonly clock: Clock,
    private readonly maxEntries = 1_000_000,
  ) {
    this.trimStmt = db.prepare<[number]>('DELETE FROM audit_log WHERE seq <= (SELECT MAX(seq) FROM audit_log) - ?');
    this.insertStmt = db.prepare<[Row]>(
      `INSERT INTO audit_log (at, action, protocol, username, client_ip, app_password_id, app_password_name, reason, detail)
       VALUES (@at, @action, @protocol, @username, @client_ip, @app_password_id, @app_password_name, @reason, @detail)`,
    );
    this.pruneStmt = db.prepare<[number]>('DELETE FROM audit_log WHERE at < ?');
    // A read-only store (passgate doctor) is read as it is.
    if (!db.readonly) this.pruneStmt.run(this.clock() - this.retentionMs);
  }

  async append(e: AuditEvent): Promise<void> {
    this.insertStmt.run({
      at: e.at,
      action: e.action,
      protocol: e.protocol,
      username: e.username,
      client_ip: e.clientIp,
      app_password_id: e.appPasswordId,
      app_password_name: e.appPasswordName,
      reason: e.reason,
      detail: e.detail,
    });
    if (++this.appendsSincePrune >= PRUNE_EVERY) await this.prune();
  }

  async query(q: AuditQuery): Promise<AuditEvent[]> {
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
    add('reason = ?', q.reason);
    add('protocol = ?', q.protocol);
    add('action = ?', q.action);
    const rows = this.db
      .prepare<(string | number)[], Row>(`SELECT * FROM audit_log WHERE ${where.join(' AND ')} ORDER BY at DESC, seq DESC LIMIT ?`)
      .all(...args, q.limit);
    return rows.map((r) => ({
      at: r.at,
      action: r.action as AuditAction,
      protocol: r.protocol as Protocol | null,
      username: r.username,
      clientIp: r.client_ip,
      appPasswordId: r.app_password_id,
      appPasswordName: r.app_password_name,
      reason: r.reason as AuditReason,
      detail: r.detail,
    }));
  }

  async prune(): Promise<number> {
    this.appendsSincePrune = 0;
    return this.pruneStmt.run(this.clock() - this.retentionMs).changes + this.trimStmt.run(this.maxEntries).changes;
  }

  async close(): Promise<void> {}
}
