import { NO_MESSAGE_LIMITS, type AppPasswordRecord, type MessagePolicy } from '../core/app-password-record.js';
import { applyPatch, type AppPasswordPatch } from '../core/app-password-patch.js';
import type { CredentialStore, CredentialUse, InsertResult } from '../core/credential-store.js';
import { GatewayError } from '../core/gateway-error.js';
import { countImport, mergeImportedRecord, type ImportCounts } from '../core/imported-record.js';
import type { Protocol } from '../core/protocol.js';
import type { SqliteDatabase } from './sqlite-database.js';

interface Row {
  id: string;
  username: string;
  mailbox: string;
  name: string;
  scopes: string;
  allowed_networks: string;
  expires_at: number | null;
  created_at: number;
  created_by: string;
  last_used_at: number | null;
  last_used_ip: string | null;
  last_used_protocol: string | null;
  use_count: number;
  revoked_at: number | null;
  disabled_at: number | null;
  policy: string;
  selector: string;
  hash: string;
}

function fromRow(row: Row): AppPasswordRecord {
  return {
    id: row.id,
    username: row.username,
    mailbox: row.mailbox,
    name: row.name,
    scopes: JSON.parse(row.scopes) as Protocol[],
    allowedNetworks: JSON.parse(row.allowed_networks) as string[],
    expiresAt: row.expires_at,
    createdAt: row.created_at,
    createdBy: row.created_by,
    lastUsedAt: row.last_used_at,
    lastUsedIp: row.last_used_ip,
    lastUsedProtocol: row.last_used_protocol as Protocol | null,
    useCount: row.use_count,
    revokedAt: row.revoked_at,
    disabledAt: row.disabled_at ?? null,
    policy: { ...NO_MESSAGE_LIMITS, ...(JSON.parse(row.policy) as Partial<MessagePolicy>) },
    selector: row.selector,
    hash: row.hash,
  };
}

function toRow(r: AppPasswordRecord): Row {
  return {
    id: r.id,
    username: r.username,
    mailbox: r.mailbox,
    name: r.name,
    scopes: JSON.stringify(r.scopes),
    allowed_networks: JSON.stringify(r.allowedNetworks),
    expires_at: r.expiresAt,
    created_at: r.createdAt,
    created_by: r.createdBy,
    last_used_at: r.lastUsedAt,
    last_used_ip: r.lastUsedIp,
    last_used_protocol: r.lastUsedProtocol,
    use_count: r.useCount,
    revoked_at: r.revokedAt,
    disabled_at: r.disabledAt,
    policy: JSON.stringify(r.policy),
    selector: r.selector,
    hash: r.hash,
  };
}

const COLUMNS = Object.keys(toRow({} as AppPasswordRecord));

/** The embedded credential store: one SQLite file, shared with the audit log. */
export class SqliteCredentialStore implements CredentialStore {
  private readonly stmt;

  constructor(private readonly db: SqliteDatabase) {
    this.stmt = {
      countActive: db.prepare<[string, number], { n: number }>(
        'SELECT COUNT(*) AS n FROM app_passwords WHERE username = ? AND revoked_at IS NULL AND (expires_at IS NULL OR expires_at > ?)',
      ),
      selectorTaken: db.prepare<[string, string], { id: string }>('SELECT id FROM app_passwords WHERE username = ? AND selector = ?'),
      insert: db.prepare<[Row]>(`INSERT INTO app_passwords (${COLUMNS.join(', ')}) VALUES (${COLUMNS.map((c) => `@${c}`).join(', ')})`),
      upsert: db.prepare<[Row]>(`INSERT OR REPLACE INTO app_passwords (${COLUMNS.join(', ')}) VALUES (${COLUMNS.map((c) => `@${c}`).join(', ')})`),
      bySelector: db.prepare<[string, string], Row>('SELECT * FROM app_passwords WHERE username = ? AND selector = ?'),
      byId: db.prepare<[string], Row>('SELECT * FROM app_passwords WHERE id = ?'),
      all: db.prepare<[], Row>('SELECT * FROM app_passwords ORDER BY created_at, id'),
      byUser: db.prepare<[string], Row>('SELECT * FROM app_passwords WHERE username = ? ORDER BY created_at, id'),
      revoke: db.prepare<[number, string]>('UPDATE app_passwords SET revoked_at = ? WHERE id = ? AND revoked_at IS NULL'),
      activeOfUser: db.prepare<[string], Row>('SELECT * FROM app_passwords WHERE username = ? AND revoked_at IS NULL ORDER BY created_at, id'),
      use: db.prepare<[number, string, string, string]>(
        'UPDATE app_passwords SET last_used_at = ?, last_used_ip = ?, last_used_protocol = ?, use_count = use_count + 1 WHERE id = ?',
      ),
      replaceHash: db.prepare<[string, string, string]>('UPDATE app_passwords SET hash = ? WHERE id = ? AND hash = ?'),
    };
  }

  async insert(record: AppPasswordRecord, limits: { maxActivePerUser: number; now: number }): Promise<InsertResult> {
    return this.guard('insert', () => {
      return this.db.transaction((): InsertResult => {
        if (this.stmt.selectorTaken.get(record.username, record.selector)) return { ok: false, reason: 'selector-taken' };
        if (this.stmt.countActive.get(record.username, limits.now)!.n >= limits.maxActivePerUser) {
          return { ok: false, reason: 'limit-reached' };
        }
        this.stmt.insert.run(toRow(record));
        return { ok: true };
      }).immediate();
    });
  }

  async findBySelector(username: string, selector: string): Promise<AppPasswordRecord | null> {
    return this.guard('findBySelector', () => {
      const row = this.stmt.bySelector.get(username, selector);
      return row ? fromRow(row) : null;
    });
  }

  async get(id: string): Promise<AppPasswordRecord | null> {
    return this.guard('get', () => {
      const row = this.stmt.byId.get(id);
      return row ? fromRow(row) : null;
    });
  }

  async list(filter: { username?: string } = {}): Promise<AppPasswordRecord[]> {
    return this.guard('list', () => {
      const rows = filter.username === undefined ? this.stmt.all.all() : this.stmt.byUser.all(filter.username);
      return rows.map(fromRow);
    });
  }

  async revoke(id: string, at: number): Promise<AppPasswordRecord | null> {
    return this.guard('revoke', () => {
      this.stmt.revoke.run(at, id);
      return this.get(id);
    });
  }

  async revokeAll(username: string, at: number): Promise<AppPasswordRecord[]> {
    return this.guard('revokeAll', () => {
      return this.db.transaction(() => {
        const rows = this.stmt.activeOfUser.all(username);
        for (const row of rows) this.stmt.revoke.run(at, row.id);
        return rows.map((row) => ({ ...fromRow(row), revokedAt: at }));
      }).immediate();
    });
  }

  /** Read and write in one IMMEDIATE transaction: no revocation can come between them. */
  async update(id: string, patch: AppPasswordPatch): Promise<{ before: AppPasswordRecord; after: AppPasswordRecord } | null> {
    return this.guard('update', () => {
      return this.db.transaction(() => {
        const row = this.stmt.byId.get(id);
        if (!row) return null;
        const before = fromRow(row);
        if (before.revokedAt !== null) return { before, after: before };
        const after = applyPatch(before, patch);
        this.stmt.upsert.run(toRow(after));
        return { before, after };
      }).immediate();
    });
  }

  async recordUse(id: string, use: CredentialUse): Promise<void> {
    return this.guard('recordUse', () => {
      this.stmt.use.run(use.at, use.ip, use.protocol, id);
    });
  }

  async replaceHash(id: string, expectedHash: string, newHash: string): Promise<boolean> {
    return this.guard('replaceHash', () => {
      return this.stmt.replaceHash.run(newHash, id, expectedHash).changes === 1;
    });
  }

  /** One IMMEDIATE transaction: every record or none, merged against what no other writer can change meanwhile. */
  async importRecords(records: readonly AppPasswordRecord[]): Promise<ImportCounts> {
    return this.guard('import', () => {
      return this.db.transaction(() => {
        const counts: ImportCounts = { added: 0, replaced: 0, keptRevoked: 0 };
        for (const incoming of records) {
          const row = this.stmt.byId.get(incoming.id);
          const { record, outcome } = mergeImportedRecord(row ? fromRow(row) : null, incoming);
          this.stmt.upsert.run(toRow(record));
          countImport(counts, outcome);
        }
        return counts;
      }).immediate();
    });
  }

  async ping(): Promise<void> {
    return this.guard('ping', () => {
      this.db.prepare('SELECT 1').get();
    });
  }

  /** SQLite failures (disk full, I/O error, locked past busy_timeout) become one temporary, named error. */
  private guard<T>(operation: string, fn: () => T): T {
    try {
      return fn();
    } catch (cause) {
      throw new GatewayError('PG_STORE_UNAVAILABLE', `embedded store: ${operation} failed: ${(cause as Error).message}`, { cause });
    }
  }

  async close(): Promise<void> {
    // The database belongs to the composition root, which closes it once.
  }
}
