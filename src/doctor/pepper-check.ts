import { existsSync } from 'node:fs';
import type { Config } from '../config/config-schema.js';
import { pepperMismatchMessage, verifyPepperCheck, type PepperCheckStore } from '../core/pepper-check-store.js';
import { derivePepperKeys, pepperCheck } from '../core/pepper-keys.js';
import { createRedisClient } from '../redis/redis-client-factory.js';
import { RedisPepperCheckStore } from '../credentials/redis-pepper-check-store.js';
import { openSqliteDatabaseReadOnly, type SqliteDatabase } from '../credentials/sqlite-database.js';
import { SqlitePepperCheckStore } from '../credentials/sqlite-pepper-check-store.js';
import { fail, pass, skip, warn, type CheckResult } from './doctor-report.js';

const HINT =
  'Every app password was hashed with the pepper the store was written with: with another one, every device gets 535. ' +
  'Restore security.pepper (or security.pepper_file, or data_dir/pepper) from the backup; never generate a new one for an existing store.';

/** Security (issue 17): the configured pepper is the one the store was written with (its check value; read-only). */
export async function checkPepper(config: Config): Promise<CheckResult> {
  const check = pepperCheck(derivePepperKeys(config.security.pepper));
  if (!config.redisEnabled && !existsSync(config.sqlite.path)) return pass('pepper', 'no store yet: serve records the pepper check when it creates it');
  const redis = config.redisEnabled ? createRedisClient(config.redis, 'passgate-doctor') : null;
  redis?.on('error', () => {});
  let db: SqliteDatabase | null = null;
  try {
    db = redis ? null : openSqliteDatabaseReadOnly(config.sqlite.path);
    const store: PepperCheckStore = redis ? new RedisPepperCheckStore(redis, config.redis.key_prefix) : new SqlitePepperCheckStore(db!);
    const outcome = await verifyPepperCheck(store, check, { record: false, dataDir: config.data_dir });
    if (outcome === 'matches') return pass('pepper', 'the configured pepper is the one the store was written with');
    const active = db ? (db.prepare('SELECT count(*) AS n FROM app_passwords WHERE revoked_at IS NULL').get() as { n: number }).n : 0;
    if (active === 0) return pass('pepper', 'no pepper check recorded yet: serve records it at its next start');
    return warn('pepper', `no pepper check recorded yet, and the store holds ${active} active app passwords: serve adopts the configured pepper at its next start`, 'Make sure this is the pepper those app passwords were created with before serve runs: afterwards it refuses any other.');
  } catch (error) {
    const message = (error as Error).message;
    return message === pepperMismatchMessage(config.data_dir) ? fail('pepper', message, HINT) : skip('pepper', `cannot read the pepper check: ${message}`);
  } finally {
    db?.close();
    redis?.disconnect();
  }
}
