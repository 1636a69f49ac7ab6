import { statSync } from 'node:fs';
import type { Config } from '../config/config-schema.js';
import { openSqliteDatabase } from '../credentials/sqlite-database.js';
import { fail, pass, warn, type CheckResult } from './doctor-report.js';
import { checkRedis } from './redis-check.js';

/** The store in use: the embedded SQLite file (opens, migrates, private) or Redis (see redis-check.ts). */
export async function checkStore(config: Config): Promise<CheckResult[]> {
  if (config.redisEnabled) return checkRedis(config.redis);
  const path = config.sqlite.path;
  // Opening sets 0600 (sqlite-database.ts), so the mode the file had is read first: a copy others could read
  // may already have leaked its hashes.
  let before: number | null = null;
  try {
    before = statSync(path).mode & 0o777;
  } catch {
    // not created yet: opening creates it, private
  }
  let active: number;
  try {
    const db = openSqliteDatabase(path);
    try {
      active = (db.prepare('SELECT count(*) AS n FROM app_passwords WHERE revoked_at IS NULL').get() as { n: number }).n;
    } finally {
      db.close();
    }
  } catch (error) {
    return [fail('store', (error as Error).message, 'Check that sqlite.path (under data_dir) is on a writable disk and owned by the user passgate runs as.')];
  }
  if (before !== null && (before & 0o077) !== 0) {
    return [
      warn('store', `${path} was readable by other users (mode ${before.toString(8)}); opening it made it 0600`, 'It holds password hashes: check who could read it, and keep data_dir private (0700).'),
    ];
  }
  return [pass('store', `embedded store ${path}: opens and is up to date, ${active} active app password${active === 1 ? '' : 's'}`)];
}
