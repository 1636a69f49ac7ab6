import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { SqliteAuditLog } from '../../../src/credentials/sqlite-audit-log.js';
import { openSqliteDatabase } from '../../../src/credentials/sqlite-database.js';

describe('SqliteAuditLog', () => {
  it('keeps at most max_entries, dropping the oldest, so a flood cannot fill the disk', async () => {
    const db = openSqliteDatabase(':memory:');
    const log = new SqliteAuditLog(db, 86_400_000, () => 1_000_000, 50);
    for (let i = 0; i < 1200; i++) {
      await log.append({ at: 1_000_000, action: 'login', protocol: 'smtp', username: `u${i}`, clientIp: '192.0.2.1', appPasswordId: null, appPasswordName: null, reason: 'rate-limited', detail: null });
    }
    const count = (db.prepare('SELECT COUNT(*) AS n FROM audit_log').get() as { n: number }).n;
    assert.ok(count <= 50 + 1000, `pruned every thousand appends: ${count}`);
    await log.prune();
    assert.equal((db.prepare('SELECT COUNT(*) AS n FROM audit_log').get() as { n: number }).n, 50);
    assert.equal((await log.query({ limit: 1 }))[0]!.username, 'u1199');
    db.close();
  });
});
