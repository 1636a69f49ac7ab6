import assert from 'node:assert/strict';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, it } from 'node:test';
import { isGatewayError } from '../../src/core/gateway-error.js';
import { SqliteAuditLog } from '../../src/credentials/sqlite-audit-log.js';
import { SqliteCredentialStore } from '../../src/credentials/sqlite-credential-store.js';
import { openSqliteDatabase } from '../../src/credentials/sqlite-database.js';
import { SqliteWebSessionStore } from '../../src/credentials/sqlite-web-session-store.js';
import { makeRecord } from '../helpers/records.js';
import { credentialStoreContract } from './credential-store.contract.js';

credentialStoreContract('sqlite', async () => {
  const dir = mkdtempSync(join(tmpdir(), 'passgate-sqlite-'));
  const db = openSqliteDatabase(join(dir, 'passgate.db'));
  const clock = { now: 1_800_000_000_000 };
  return {
    store: new SqliteCredentialStore(db),
    audit: new SqliteAuditLog(db, 86_400_000, () => clock.now),
    clock,
    auditEntriesStored: async () => (db.prepare('SELECT COUNT(*) AS n FROM audit_log').get() as { n: number }).n,
    webSessions: new SqliteWebSessionStore(db, () => clock.now),
    close: async () => {
      db.close();
      rmSync(dir, { recursive: true, force: true });
    },
  };
});

describe('sqlite: store import is one transaction', () => {
  it('writes nothing when the store fails on a later record', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'passgate-sqlite-'));
    const db = openSqliteDatabase(join(dir, 'passgate.db'));
    try {
      const store = new SqliteCredentialStore(db);
      const kept = makeRecord({ username: 'kept@example.com' });
      await store.insert(kept, { maxActivePerUser: 10, now: 1_800_000_000_000 });
      await store.revoke(kept.id, 5);
      const [first, second] = [makeRecord({ username: 'first@example.com' }), makeRecord({ username: 'second@example.com' })];
      // A real SQLite failure on the last write (as a full disk would give), after two writes succeeded.
      db.exec(`CREATE TRIGGER fail_second BEFORE INSERT ON app_passwords WHEN NEW.id = '${second.id}' BEGIN SELECT RAISE(ABORT, 'disk I/O error'); END`);
      await assert.rejects(store.importRecords([first, { ...kept, revokedAt: null, name: 'Changed' }, second]), (error) => isGatewayError(error, 'PG_STORE_UNAVAILABLE') && /import failed: disk I\/O error/.test(error.message));
      assert.equal(await store.get(first.id), null, 'the first record was rolled back');
      const unchanged = (await store.get(kept.id))!;
      assert.deepEqual([unchanged.name, unchanged.revokedAt], [kept.name, 5]);
      assert.equal(await store.get(second.id), null);
    } finally {
      db.close();
      rmSync(dir, { recursive: true, force: true });
    }
  });
});
