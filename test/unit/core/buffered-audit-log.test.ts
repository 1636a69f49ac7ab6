import assert from 'node:assert/strict';
import { afterEach, beforeEach, describe, it, mock } from 'node:test';
import type { AuditEvent, AuditLog, AuditQuery } from '../../../src/core/audit-log.js';
import { BufferedAuditLog, type BufferedAuditLogOptions } from '../../../src/core/buffered-audit-log.js';

/**
 * The store behind the port: it works, fails at once, or hangs until told (a Redis that stopped answering). A hung
 * call can end "landed": the command ran but the caller saw a timeout, as when a hung Redis wakes up.
 */
class FakeAuditLog implements AuditLog {
  mode: 'ok' | 'fail' | 'hang' = 'ok';
  readonly written: AuditEvent[] = [];
  /** Every call, in order: "append <username>" or "query". */
  readonly calls: string[] = [];
  readonly hung: { call: string; settle: (outcome: 'ok' | 'fail' | 'landed') => void }[] = [];
  closed = false;

  private run<T>(call: string, work: () => T): Promise<T> {
    this.calls.push(call);
    if (this.mode === 'fail') return Promise.reject(new Error('store down'));
    if (this.mode === 'ok') return Promise.resolve(work());
    return new Promise((resolve, reject) =>
      this.hung.push({
        call,
        settle: (outcome) => {
          if (outcome === 'fail') return reject(new Error('command timed out'));
          const result = work();
          if (outcome === 'ok') resolve(result);
          else reject(new Error('command timed out'));
        },
      }),
    );
  }

  append(event: AuditEvent): Promise<void> {
    return this.run(`append ${event.username}`, () => void this.written.push(event));
  }

  query(q: AuditQuery): Promise<AuditEvent[]> {
    return this.run('query', () =>
      [...this.written]
        .reverse()
        .filter((e) => (q.username === undefined || e.username === q.username) && e.at >= (q.since ?? 0))
        .slice(0, q.limit),
    );
  }

  async prune(): Promise<number> {
    return 7;
  }

  async close(): Promise<void> {
    this.closed = true;
  }

  get appends(): string[] {
    return this.calls.filter((c) => c.startsWith('append ')).map((c) => c.slice(7));
  }
}

interface Line {
  level: 'info' | 'warn' | 'error';
  message: string;
  details: Record<string, unknown>;
}

const event = (username: string, at = 1_000): AuditEvent => ({
  at,
  action: 'login',
  protocol: 'smtp',
  username,
  clientIp: '198.51.100.7',
  appPasswordId: 'ap_1',
  appPasswordName: 'Scanner',
  reason: 'ok',
  detail: 'tls',
});

/** Lets promise callbacks run (setImmediate is not mocked; only setTimeout is). */
const settle = async () => {
  for (let i = 0; i < 5; i++) await new Promise((r) => setImmediate(r));
};

describe('BufferedAuditLog', () => {
  let inner: FakeAuditLog;
  let lines: Line[];
  let drops: number;

  const open = (options: Partial<BufferedAuditLogOptions> = {}) => {
    const at = (level: Line['level']) => (details: object, message: string) => lines.push({ level, message, details: details as Record<string, unknown> });
    return new BufferedAuditLog(inner, { info: at('info'), warn: at('warn'), error: at('error') }, { dropped: () => drops++ }, { maxQueued: 100, ...options });
  };
  const names = (events: AuditEvent[]) => events.map((e) => e.username);
  const messages = (level: Line['level']) => lines.filter((l) => l.level === level).map((l) => l.message);

  beforeEach(() => {
    inner = new FakeAuditLog();
    lines = [];
    drops = 0;
    mock.timers.enable({ apis: ['setTimeout'] });
  });
  afterEach(() => mock.timers.reset());

  it('writes straight to the store while it works, holding nothing', async () => {
    const log = open();
    await log.append(event('a'));
    await log.append(event('b'));
    assert.deepEqual(names(inner.written), ['a', 'b']);
    assert.deepEqual(inner.calls, ['append a', 'append b']);
    assert.equal(log.queued, 0);
    assert.deepEqual(lines, []);
  });

  it('holds a record the store refused, and the call still resolves', async () => {
    const log = open();
    inner.mode = 'fail';
    await log.append(event('a'));
    assert.equal(log.queued, 1);
    assert.deepEqual(inner.calls, ['append a']);
    assert.deepEqual(lines, [{ level: 'warn', message: 'audit log unavailable; holding sign-in records', details: { cause: 'store down', maxQueued: 100 } }]);
  });

  it('while records are held, new ones join the queue at once: no call to the store per login', async () => {
    const log = open();
    inner.mode = 'hang';
    const first = log.append(event('a'));
    await settle();
    inner.hung.shift()!.settle('fail'); // the first waits for the store's timeout, once
    await first;
    for (const name of ['b', 'c', 'd']) await log.append(event(name));
    assert.deepEqual(inner.calls, ['append a']);
    assert.equal(log.queued, 4);
    assert.equal(inner.hung.length, 0);
  });

  it('retries with backoff (1 s doubling to 30 s), reading before writing, then writes all in order once the store is back', async () => {
    const log = open();
    inner.mode = 'fail';
    for (const name of ['a', 'b', 'c']) await log.append(event(name));
    for (const delay of [1000, 2000, 4000, 8000, 16_000, 30_000, 30_000]) {
      mock.timers.tick(delay - 1);
      await settle();
      const before = inner.calls.length;
      mock.timers.tick(1);
      await settle();
      assert.deepEqual(inner.calls.slice(before), ['query'], `one retry after ${delay} ms, not before`);
    }
    assert.deepEqual(inner.appends, ['a'], 'a retry into a store that does not answer writes nothing');
    assert.equal(messages('warn').filter((m) => m === 'audit log still unavailable').length, 7);

    inner.mode = 'ok';
    await log.append(event('d')); // still held: the store is not tried between retries
    mock.timers.tick(30_000);
    await settle();
    assert.deepEqual(names(inner.written), ['a', 'b', 'c', 'd']);
    assert.equal(log.queued, 0);
    assert.deepEqual(lines.at(-1), { level: 'info', message: 'audit log available again; held sign-in records written', details: { written: 4, alreadyStored: 0 } });

    await log.append(event('e'));
    assert.deepEqual(names(inner.written), ['a', 'b', 'c', 'd', 'e'], 'straight to the store again');
    // The backoff starts over at 1 s for the next outage.
    inner.mode = 'fail';
    await log.append(event('f'));
    mock.timers.tick(1000);
    await settle();
    assert.deepEqual(inner.calls.slice(-2), ['append f', 'query']);
  });

  it('keeps each record as it was: its own time, not the time it was written', async () => {
    const log = open();
    inner.mode = 'fail';
    await log.append(event('a', 111));
    await log.append(event('b', 222));
    inner.mode = 'ok';
    mock.timers.tick(1000);
    await settle();
    assert.deepEqual(inner.written, [event('a', 111), event('b', 222)]);
  });

  it('a write that timed out but ran after all (a hung Redis waking up) is not written twice', async () => {
    const log = open();
    inner.mode = 'hang';
    const first = log.append(event('a'));
    await settle();
    inner.hung.shift()!.settle('landed');
    await first;
    await log.append(event('b'));
    assert.deepEqual(names(inner.written), ['a']);
    assert.equal(log.queued, 2, 'the caller saw a failure: both are held');
    inner.mode = 'ok';
    mock.timers.tick(1000);
    await settle();
    assert.deepEqual(names(inner.written), ['a', 'b']);
    assert.deepEqual(inner.calls, ['append a', 'query', 'append b']);
    assert.deepEqual(lines.at(-1)!.details, { written: 1, alreadyStored: 1 });
  });

  it('a held record whose replay failed is looked for before it is written again', async () => {
    const log = open();
    inner.mode = 'fail';
    await log.append(event('a'));
    await log.append(event('b'));
    inner.mode = 'hang';
    mock.timers.tick(1000);
    await settle();
    inner.hung.shift()!.settle('ok'); // the probe answers
    await settle();
    inner.hung.shift()!.settle('landed'); // writing "a" times out, yet it ran
    await settle();
    inner.mode = 'ok';
    mock.timers.tick(2000); // nothing confirmed written: the backoff doubled
    await settle();
    assert.deepEqual(names(inner.written), ['a', 'b']);
    assert.deepEqual(inner.calls, ['append a', 'query', 'append a', 'query', 'append b']);
  });

  it('records arriving while held ones are written go after them', async () => {
    const log = open();
    inner.mode = 'fail';
    await log.append(event('a'));
    await log.append(event('b'));
    inner.mode = 'hang';
    mock.timers.tick(1000);
    await settle();
    await log.append(event('c')); // the flusher is on "a": "c" waits behind "b"
    while (inner.hung.length > 0 || log.queued > 0) {
      inner.hung.shift()?.settle('ok');
      await settle();
    }
    assert.deepEqual(names(inner.written), ['a', 'b', 'c']);
    assert.deepEqual(inner.calls, ['append a', 'query', 'append a', 'append b', 'append c']);
  });

  it('is bounded: past maxQueued the oldest is dropped, counted and logged with the record', async () => {
    const log = open({ maxQueued: 3 });
    inner.mode = 'fail';
    for (const name of ['a', 'b', 'c', 'd', 'e']) await log.append(event(name));
    assert.equal(log.queued, 3);
    assert.equal(log.dropped, 2);
    assert.equal(drops, 2);
    const dropped = lines.filter((l) => l.message === 'audit event dropped');
    assert.deepEqual(
      dropped.map((l) => [l.level, l.details.username, l.details.dropped, l.details.at, l.details.reason]),
      [
        ['error', 'a', 1, 1000, 'ok'],
        ['error', 'b', 2, 1000, 'ok'],
      ],
    );
    inner.mode = 'ok';
    mock.timers.tick(1000);
    await settle();
    assert.deepEqual(names(inner.written), ['c', 'd', 'e']);
  });

  it('never drops the record being handled: the bound counts it, and the oldest waiting one goes', async () => {
    const log = open({ maxQueued: 2 });
    inner.mode = 'fail';
    await log.append(event('a'));
    await log.append(event('b'));
    inner.mode = 'hang';
    mock.timers.tick(1000);
    await settle();
    await log.append(event('c'));
    assert.deepEqual(lines.filter((l) => l.message === 'audit event dropped').map((l) => l.details.username), ['b']);
    inner.hung.shift()!.settle('fail');
    await settle();
    assert.equal(log.queued, 2);
    inner.mode = 'ok';
    mock.timers.tick(2000);
    await settle();
    assert.deepEqual(names(inner.written), ['a', 'c']);
  });

  it('maxQueued 0 holds nothing: a refused record is dropped at once and the next login tries the store', async () => {
    const log = open({ maxQueued: 0 });
    inner.mode = 'fail';
    await log.append(event('a'));
    await log.append(event('b'));
    assert.deepEqual(inner.calls, ['append a', 'append b']);
    assert.equal(log.queued, 0);
    assert.deepEqual(messages('error'), ['audit event dropped', 'audit event dropped']);
    assert.deepEqual(messages('warn'), []);
  });

  it('close() writes what is held when the store answers, then closes the store', async () => {
    const log = open();
    inner.mode = 'fail';
    await log.append(event('a'));
    await log.append(event('b'));
    inner.mode = 'ok';
    await log.close();
    assert.deepEqual(names(inner.written), ['a', 'b']);
    assert.equal(inner.closed, true);
    assert.deepEqual(messages('error'), []);
    assert.equal(log.dropped, 0);
  });

  it('close() logs every record still held as lost when the store is still down', async () => {
    const log = open();
    inner.mode = 'fail';
    await log.append(event('a'));
    await log.append(event('b'));
    await log.close();
    const lost = lines.filter((l) => l.message === 'audit event lost');
    assert.deepEqual(
      lost.map((l) => [l.level, l.details.username, l.details.action]),
      [
        ['error', 'a', 'login'],
        ['error', 'b', 'login'],
      ],
    );
    assert.equal(drops, 2);
    assert.equal(log.queued, 0);
    assert.equal(inner.closed, true);
  });

  it('close() waits at most closeFlushMs for a store that hangs', async () => {
    const log = open({ closeFlushMs: 5000 });
    inner.mode = 'fail';
    await log.append(event('a'));
    await log.append(event('b'));
    inner.mode = 'hang';
    let closed = false;
    const closing = log.close().then(() => (closed = true));
    await settle();
    assert.deepEqual(inner.calls, ['append a', 'query'], 'one last try, read first');
    mock.timers.tick(4999);
    await settle();
    assert.equal(closed, false);
    mock.timers.tick(1);
    await closing;
    assert.deepEqual(lines.filter((l) => l.message === 'audit event lost').map((l) => l.details.username), ['a', 'b']);
    assert.equal(inner.closed, true);
    // The hung read ending later changes nothing, and nothing is retried.
    inner.hung.shift()!.settle('ok');
    await settle();
    mock.timers.tick(60_000);
    await settle();
    assert.deepEqual(inner.calls, ['append a', 'query']);
  });

  it('close() is idempotent; after it an append goes to the store and fails as the store does', async () => {
    const log = open();
    await Promise.all([log.close(), log.close()]);
    inner.mode = 'fail';
    await assert.rejects(log.append(event('late')), /store down/);
    assert.equal(log.queued, 0);
  });

  it('retryNow() (the store reconnected) writes held records at once instead of after the backoff', async () => {
    const log = open();
    inner.mode = 'fail';
    await log.append(event('a'));
    for (const delay of [1000, 2000, 4000]) {
      mock.timers.tick(delay);
      await settle();
    }
    inner.mode = 'ok';
    log.retryNow();
    await settle();
    assert.deepEqual(names(inner.written), ['a']);
    log.retryNow(); // nothing held: nothing to do
    await settle();
    assert.deepEqual(inner.calls, ['append a', 'query', 'query', 'query', 'query', 'append a']);
  });

  it('query and prune go to the store: a query during an outage fails as before', async () => {
    const log = open();
    await log.append(event('a'));
    assert.deepEqual(names(await log.query({ limit: 5 })), ['a']);
    assert.equal(await log.prune(), 7);
    inner.mode = 'fail';
    await log.append(event('b'));
    await assert.rejects(log.query({ limit: 5 }), /store down/);
  });
});
