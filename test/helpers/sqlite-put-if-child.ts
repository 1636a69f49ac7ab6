// A separate process racing on one SQLite file (test/integration/token-state-store-cas.test.ts): it opens the
// store, says "ready", waits for "go" on stdin so every process writes at the same moment, then prints whether its
// compare-and-set won.
import { createInterface } from 'node:readline';
import { openSqliteDatabase } from '../../src/credentials/sqlite-database.js';
import { SqliteTokenStateStore } from '../../src/credentials/sqlite-token-state-store.js';

const [file, key, value, expected] = process.argv.slice(2) as [string, string, string, string];
const db = openSqliteDatabase(file);
const store = new SqliteTokenStateStore(db);
const state = {
  key,
  sealedRefreshToken: value,
  sealedAccessToken: null,
  accessExpiresAt: null,
  accessObtainedAt: null,
  status: 'ok' as const,
  lastSuccessAt: null,
  failingSince: null,
  failures: 0,
  nextAttemptAt: null,
  lastError: null,
  updatedAt: 2,
};
process.stdout.write('ready\n');
for await (const line of createInterface({ input: process.stdin })) {
  if (line !== 'go') continue;
  const won = await store.putIf(state, 'sealedRefreshToken', expected);
  process.stdout.write(`${won ? 'won' : 'lost'}\n`);
  break;
}
db.close();
