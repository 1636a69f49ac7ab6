import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import { Redis } from 'ioredis';
import type { MessageLog, MessageRecord } from '../../src/core/message-log.js';
import { RedisMessageLog } from '../../src/credentials/redis-message-log.js';
import { openSqliteDatabase, openSqliteDatabaseReadOnly } from '../../src/credentials/sqlite-database.js';
import { SqliteMessageLog } from '../../src/credentials/sqlite-message-log.js';
import { startRedis } from '../helpers/redis-server.js';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { openApp } from '../../src/app.js';
import { createLogger } from '../../src/observability/logger.js';
import { runCli } from '../helpers/run-cli.js';
import { makeTestConfig } from '../helpers/test-config.js';

const DAY = 86_400_000;

function record(over: Partial<MessageRecord>): MessageRecord {
  return {
    at: Date.now(),
    sessionId: 'sess-1',
    protocol: 'smtp',
    username: 'scanner@example.com',
    mailbox: 'scanner@example.com',
    clientIp: '192.0.2.10',
    appPasswordId: 'ap_scanner',
    appPasswordName: 'Scanner',
    sender: 'scanner@example.com',
    recipientCount: 1,
    recipients: ['boss@example.com'],
    sizeBytes: 1234,
    messageId: '<scan@scanner.example.com>',
    reply: '250 2.0.0 OK <scan@scanner.example.com> [Hostname=X]',
    queueId: '<scan@scanner.example.com>',
    result: 'relayed',
    detail: null,
    ...over,
  };
}

/** One behaviour for both message logs: filters, order, the time window, retention. */
function messageLogContract(name: string, open: (clock: () => number) => Promise<{ log: MessageLog; close(): Promise<void> }>): void {
  describe(`${name}: message log`, () => {
    const now = Date.now();
    let t: { log: MessageLog; close(): Promise<void> };
    before(async () => {
      t = await open(() => now);
      await t.log.append(record({ at: now - 3 * DAY, sessionId: 'too-old' }));
      await t.log.append(record({ at: now - 60_000, sessionId: 'a' }));
      await t.log.append(record({ at: now - 50_000, sessionId: 'b', result: 'policy-denied', detail: 'sender not allowed: boss@example.com' }));
      await t.log.append(record({ at: now - 40_000, sessionId: 'c', username: 'printer@example.com', appPasswordId: 'ap_printer' }));
      await t.log.append(record({ at: now - 30_000, sessionId: 'd', result: 'refused' }));
    });
    after(async () => t.close());

    const ids = (records: MessageRecord[]) => records.map((r) => r.sessionId);

    it('gives back every field as written, newest first, never past retention', async () => {
      const all = await t.log.query({ limit: 100 });
      assert.deepEqual(ids(all), ['d', 'c', 'b', 'a']);
      assert.deepEqual(all[3], record({ at: now - 60_000, sessionId: 'a' }));
    });

    it('filters by user, app password, result and protocol', async () => {
      assert.deepEqual(ids(await t.log.query({ limit: 100, username: 'printer@example.com' })), ['c']);
      assert.deepEqual(ids(await t.log.query({ limit: 100, appPasswordId: 'ap_scanner' })), ['d', 'b', 'a']);
      assert.deepEqual(ids(await t.log.query({ limit: 100, result: 'policy-denied' })), ['b']);
      assert.deepEqual(ids(await t.log.query({ limit: 100, protocol: 'imap' })), []);
      assert.deepEqual(ids(await t.log.query({ limit: 100, protocol: 'smtp', result: 'relayed', username: 'scanner@example.com' })), ['a']);
    });

    it('bounds by since and until, and by limit', async () => {
      assert.deepEqual(ids(await t.log.query({ limit: 100, since: now - 45_000 })), ['d', 'c']);
      assert.deepEqual(ids(await t.log.query({ limit: 100, until: now - 45_000 })), ['b', 'a']);
      assert.deepEqual(ids(await t.log.query({ limit: 100, since: now - 55_000, until: now - 35_000 })), ['c', 'b']);
      assert.deepEqual(ids(await t.log.query({ limit: 2 })), ['d', 'c']);
    });
  });
}

messageLogContract('sqlite', async (clock) => {
  const db = openSqliteDatabase(':memory:');
  return { log: new SqliteMessageLog(db, DAY, clock), close: async () => void db.close() };
});

messageLogContract('redis', async (clock) => {
  const server = await startRedis();
  const redis = new Redis(server.url);
  return {
    log: new RedisMessageLog(redis, server.prefix, DAY, clock),
    close: async () => {
      redis.disconnect();
      await server.close();
    },
  };
});

describe('sqlite message log: bounded and read-only', () => {
  it('keeps at most max entries, oldest dropped first', async () => {
    const db = openSqliteDatabase(':memory:');
    const log = new SqliteMessageLog(db, DAY, () => Date.now(), 3);
    for (let i = 0; i < 5; i++) await log.append(record({ sessionId: `s${i}`, at: Date.now() + i }));
    await log.prune();
    assert.deepEqual((await log.query({ limit: 10 })).map((r) => r.sessionId), ['s4', 's3', 's2']);
    db.close();
  });

  it('reads an older store without the table (doctor) as empty, and never creates it there', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'passgate-msglog-'));
    try {
      const path = join(dir, 'passgate.db');
      openSqliteDatabase(path).close();
      const db = openSqliteDatabaseReadOnly(path);
      const log = new SqliteMessageLog(db, DAY, () => Date.now());
      assert.deepEqual(await log.query({ limit: 10 }), []);
      await assert.rejects(log.append(record({})));
      db.close();
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });
});

describe('message trace on Redis, through the composition root and the CLI', () => {
  it('what one instance writes, passgate audit --messages on another process reads', async () => {
    const server = await startRedis();
    const tc = makeTestConfig({ redis: { url: server.url, key_prefix: server.prefix } });
    const app = await openApp(tc.config, { logger: createLogger('silent') });
    try {
      await app.messageLog.append(record({ sessionId: 'from-redis' }));
      const out = await runCli(['--config', tc.file, 'audit', '--messages', '--user', 'scanner@example.com', '--json'], { cwd: tc.dir });
      assert.equal(out.code, 0, out.stderr);
      assert.deepEqual((JSON.parse(out.stdout) as MessageRecord[]).map((r) => r.sessionId), ['from-redis']);
    } finally {
      await app.close();
      tc.cleanup();
      await server.close();
    }
  });
});
