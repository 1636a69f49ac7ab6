import { chmodSync, mkdirSync } from 'node:fs';
import { dirname } from 'node:path';
import Database from 'better-sqlite3';
import { GatewayError } from '../core/gateway-error.js';

export type SqliteDatabase = Database.Database;

/** Schema migrations, applied in order; PRAGMA user_version records how many ran. */
const MIGRATIONS = [
  `CREATE TABLE app_passwords (
     id TEXT PRIMARY KEY,
     username TEXT NOT NULL,
     mailbox TEXT NOT NULL,
     name TEXT NOT NULL,
     scopes TEXT NOT NULL,
     allowed_networks TEXT NOT NULL,
     expires_at INTEGER,
     created_at INTEGER NOT NULL,
     created_by TEXT NOT NULL,
     last_used_at INTEGER,
     last_used_ip TEXT,
     last_used_protocol TEXT,
     use_count INTEGER NOT NULL DEFAULT 0,
     revoked_at INTEGER,
     selector TEXT NOT NULL,
     hash TEXT NOT NULL,
     UNIQUE (username, selector)
   );
   CREATE INDEX app_passwords_username ON app_passwords (username, created_at);
   CREATE TABLE audit_log (
     seq INTEGER PRIMARY KEY AUTOINCREMENT,
     at INTEGER NOT NULL,
     action TEXT NOT NULL,
     protocol TEXT,
     username TEXT NOT NULL,
     client_ip TEXT,
     app_password_id TEXT,
     app_password_name TEXT,
     reason TEXT NOT NULL,
     detail TEXT
   );
   CREATE INDEX audit_log_at ON audit_log (at);
   CREATE INDEX audit_log_username_at ON audit_log (username, at);`,
  `CREATE TABLE oauth_tokens (
     key TEXT PRIMARY KEY,
     state TEXT NOT NULL
   );`,
  `ALTER TABLE app_passwords ADD COLUMN policy TEXT NOT NULL DEFAULT '{}';`,
];

/** Opens (creating and migrating) the embedded store file, in WAL mode so readers never block the writer. */
export function openSqliteDatabase(path: string): SqliteDatabase {
  let db: SqliteDatabase;
  try {
    if (path !== ':memory:') mkdirSync(dirname(path), { recursive: true, mode: 0o700 });
    db = new Database(path);
    // The file holds password hashes: readable by passgate's user only.
    if (path !== ':memory:') chmodSync(path, 0o600);
  } catch (cause) {
    throw new GatewayError('PG_STORE_UNAVAILABLE', `cannot open the embedded store ${path} (sqlite.path): ${(cause as Error).message}`, { cause });
  }
  db.pragma('journal_mode = WAL');
  db.pragma('synchronous = NORMAL');
  db.pragma('busy_timeout = 5000');
  db.pragma('foreign_keys = ON');
  const version = db.pragma('user_version', { simple: true }) as number;
  if (version > MIGRATIONS.length) {
    db.close();
    throw new GatewayError('PG_STORE_UNAVAILABLE', `the embedded store ${path} was written by a newer passgate (schema ${version})`);
  }
  db.transaction(() => {
    for (let v = version; v < MIGRATIONS.length; v++) db.exec(MIGRATIONS[v]!);
    db.pragma(`user_version = ${MIGRATIONS.length}`);
  })();
  return db;
}
