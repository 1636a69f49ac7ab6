import { existsSync, statSync } from 'node:fs';
import type { Config } from '../config/config-schema.js';
import { inspectSqliteDatabase, SQLITE_SCHEMA_VERSION } from '../credentials/sqlite-database.js';
import { fail, pass, warn, type CheckResult } from './doctor-report.js';
import { checkRedis } from './redis-check.js';

/**
 * The store in use: the embedded SQLite file or Redis (see redis-check.ts). The file is only ever opened
 * read-only: doctor never creates it, never upgrades its schema and never changes its mode, so it is safe to run
 * next to a `passgate serve` of another version.
 */
export async function checkStore(config: Config): Promise<CheckResult[]> {
  if (config.redisEnabled) return checkRedis(config.redis);
  const path = config.sqlite.path;
  if (!existsSync(path)) {
    return [warn('store', `no store yet at ${path}; \`passgate serve\` creates it`, 'A fresh install has none until passgate serve (or passgate app-password create) first runs. If serve did run, check sqlite.path and data_dir.')];
  }
  let mode: number;
  let found;
  try {
    mode = statSync(path).mode & 0o777;
    found = inspectSqliteDatabase(path);
  } catch (error) {
    return [fail('store', (error as Error).message, 'Check that sqlite.path (under data_dir) is a passgate store, and readable by the user passgate runs as.')];
  }
  if (found.version > SQLITE_SCHEMA_VERSION) {
    return [fail('store', `${path} has schema version ${found.version}: written by a newer passgate (this one expects ${SQLITE_SCHEMA_VERSION})`, 'Run the passgate version that wrote it, or restore a backup made for this version.')];
  }
  const results: CheckResult[] = [];
  if (found.version < SQLITE_SCHEMA_VERSION) {
    results.push(warn('store', `${path}: schema version ${found.version}, this passgate expects ${SQLITE_SCHEMA_VERSION}; serve will upgrade it`, 'Doctor does not upgrade it. The upgrade runs when this version of passgate serve first opens the file; an older passgate cannot open it afterwards, so back it up first.'));
  }
  if ((mode & 0o077) !== 0) {
    results.push(
      warn('store', `${path} is readable by other users (mode ${mode.toString(8)})`, `It holds password hashes: check who could read it, run chmod 600 ${path} (serve also sets 0600 when it opens it), and keep data_dir private (0700).`),
    );
  }
  if (results.length > 0) return results;
  const active = found.activeAppPasswords ?? 0;
  return [pass('store', `embedded store ${path}: schema version ${found.version} is current, ${active} active app password${active === 1 ? '' : 's'}`)];
}
