import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { SqliteAuditLog } from '../../src/credentials/sqlite-audit-log.js';
import { SqliteCredentialStore } from '../../src/credentials/sqlite-credential-store.js';
import { openSqliteDatabase } from '../../src/credentials/sqlite-database.js';
import { credentialStoreContract } from './credential-store.contract.js';

credentialStoreContract('sqlite', async () => {
  const dir = mkdtempSync(join(tmpdir(), 'passgate-sqlite-'));
  const db = openSqliteDatabase(join(dir, 'passgate.db'));
  const clock = { now: 1_800_000_000_000 };
  return {
    store: new SqliteCredentialStore(db),
    audit: new SqliteAuditLog(db, 86_400_000, () => clock.now),
    clock,
    close: async () => {
      db.close();
      rmSync(dir, { recursive: true, force: true });
    },
  };
});
