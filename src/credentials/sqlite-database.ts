import { chmodSync, existsSync, mkdirSync } from 'node:fs';
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
  // The pepper check (core/pepper-check-store.ts): the store knows the pepper it was written with.
  `CREATE TABLE IF NOT EXISTS meta (key TEXT PRIMARY KEY, value TEXT NOT NULL);`,
  `ALTER TABLE app_passwords ADD COLUMN disabled_at INTEGER;
   CREATE TABLE web_sessions (
     id_hash TEXT PRIMARY KEY,
     username TEXT NOT NULL,
     session TEXT NOT NULL,
     expires_at INTEGER NOT NULL
   );
   CREATE INDEX web_sessions_username ON web_sessions (username);
   CREATE INDEX web_sessions_expires_at ON web_sessions (expires_at);`,
];

/** The schema version (PRAGMA user_version) this passgate reads and writes. */
export const SQLITE_SCHEMA_VERSION = MIGRATIONS.length;

function migrate(db: SqliteDatabase, path: string): void {
  const version = db.pragma('user_version', { simple: true }) as number;
  if (version > MIGRATIONS.length) {
    db.close();
    throw new GatewayError('PG_STORE_UNAVAILABLE', `the embedded store ${path} was written by a newer passgate (schema ${version})`);
  }
  db.transaction(() => {
    for (let v = version; v < MIGRATIONS.length; v++) db.exec(MIGRATIONS[v]!);
    db.pragma(`user_version = ${MIGRATIONS.length}`);
  })();
}

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
  migrate(db, path);
  return db;
}

/** What a read-only look at the store file found (`passgate doctor`). */
export interface SqliteStoreInspection {
  /** Its PRAGMA user_version: SQLITE_SCHEMA_VERSION when up to date, lower before `serve` upgrades it. */
  version: number;
  /** Active (not revoked) app passwords; null when the schema has no app_passwords table yet. */
  activeAppPasswords: number | null;
}

/**
 * Opens an existing store file read-only: never creates it, never migrates it, never changes its mode, so it is
 * safe next to a running `passgate serve` of any version. (SQLite may still create the empty -wal and -shm files
 * a WAL-mode reader needs, as `serve` does; the database file itself is not written.)
 */
function openReadOnly(path: string): SqliteDatabase {
  try {
    const db = new Database(path, { readonly: true, fileMustExist: true });
    db.pragma('busy_timeout = 5000');
    return db;
  } catch (cause) {
    const code = (cause as { code?: string }).code;
    const why = code === 'SQLITE_CANTOPEN' && !existsSync(path) ? 'no such file' : (cause as Error).message;
    throw new GatewayError('PG_STORE_UNAVAILABLE', `cannot open the embedded store ${path} (sqlite.path) read-only: ${why}`, { cause });
  }
}

/** Reads the schema version and the active app passwords of an existing store file, read-only. */
export function inspectSqliteDatabase(path: string): SqliteStoreInspection {
  const db = openReadOnly(path);
  try {
    const version = db.pragma('user_version', { simple: true }) as number;
    const hasTable = db.prepare("SELECT 1 FROM sqlite_master WHERE type = 'table' AND name = 'app_passwords'").get() !== undefined;
    const activeAppPasswords = hasTable
      ? (db.prepare('SELECT count(*) AS n FROM app_passwords WHERE revoked_at IS NULL').get() as { n: number }).n
      : null;
    return { version, activeAppPasswords };
  } finally {
    db.close();
  }
}

/**
 * The store as `passgate doctor` sees it, without changing the file: an existing, up-to-date file opened
 * read-only (a write fails with SQLITE_READONLY); an older schema copied into memory and migrated there (what
 * `serve` will find after its upgrade); no file at all, an empty store in memory.
 */
export function openSqliteDatabaseReadOnly(path: string): SqliteDatabase {
  if (!existsSync(path)) return openSqliteDatabase(':memory:');
  const db = openReadOnly(path);
  if (db.pragma('user_version', { simple: true }) === MIGRATIONS.length) return db;
  // Older (or newer, which migrate() refuses): the in-memory copy below is what migrate() works on.
  const image = db.serialize();
  db.close();
  // Bytes 18-19 of the header say "WAL" (2); an in-memory database cannot use a WAL: legacy journal (1).
  image[18] = 1;
  image[19] = 1;
  const copy = new Database(image);
  copy.pragma('foreign_keys = ON');
  migrate(copy, path);
  return copy;
}
