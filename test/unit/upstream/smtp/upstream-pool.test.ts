import assert from 'node:assert/strict';
import { afterEach, describe, it, mock } from 'node:test';
import { UpstreamBusyError, UpstreamPool } from '../../../../src/upstream/smtp/upstream-pool.js';
import type { UpstreamSmtpSession } from '../../../../src/upstream/smtp/upstream-smtp-session.js';
import type { EventLogger } from '../../../../src/core/event-logger.js';

/** A stand-in for an upstream session at the pool's port: reusable until closed. */
function fakeSession(name: string): UpstreamSmtpSession & { name: string; closed: boolean } {
  const s = {
    name,
    closed: false,
    get reusable() {
      return !s.closed;
    },
    close() {
      s.closed = true;
    },
    async quit() {
      s.closed = true;
    },
  };
  return s as unknown as UpstreamSmtpSession & { name: string; closed: boolean };
}

const silent = { info() {}, warn() {}, error() {}, debug() {} } as unknown as EventLogger;

/** A connection attempt the test finishes by hand. */
function deferred<T>() {
  let resolve!: (v: T) => void;
  let reject!: (e: Error) => void;
  const promise = new Promise<T>((res, rej) => ((resolve = res), (reject = rej)));
  return { promise, resolve, reject };
}

const flush = () => new Promise((r) => setImmediate(r));

describe('UpstreamPool waiting', () => {
  afterEach(() => mock.timers.reset());

  it('bounds a waiter by its own wait, a connection attempt made for it included', async () => {
    mock.timers.enable({ apis: ['setTimeout'] });
    const opens = [deferred<UpstreamSmtpSession>(), deferred<UpstreamSmtpSession>()];
    let n = 0;
    const pool = new UpstreamPool(() => opens[n++]!.promise, { maxPerMailbox: 1, waitMs: 1000, idleMs: 60_000 }, silent);
    const first = pool.acquire('m@x');
    const a = fakeSession('a');
    opens[0]!.resolve(a);
    assert.equal(await first, a);
    const second = pool.acquire('m@x'); // the only slot is taken: it waits
    const outcome = second.then((s) => s, (e: Error) => e);
    mock.timers.tick(500);
    pool.release('m@x', a, false); // not reusable: closed, and a new session is opened for the waiter
    await flush();
    assert.equal(n, 2, 'a connection attempt was started for the waiter');
    mock.timers.tick(500); // the waiter's 1000 ms are up while that attempt still hangs
    assert.ok((await outcome) instanceof UpstreamBusyError);
    // The attempt succeeds after all: the session is not lost, it waits in the pool for the next client.
    const b = fakeSession('b');
    opens[1]!.resolve(b);
    await flush();
    assert.deepEqual(pool.stats(), { busy: 0, idle: 1, waiting: 0 });
    assert.equal(await pool.acquire('m@x'), b);
    await pool.close();
  });

  it('a waiter whose time runs out leaves the others waiting', async () => {
    mock.timers.enable({ apis: ['setTimeout'] });
    const a = fakeSession('a');
    const pool = new UpstreamPool(async () => a, { maxPerMailbox: 1, waitMs: 1000, idleMs: 60_000 }, silent);
    await pool.acquire('m@x');
    const early = pool.acquire('m@x').then((s) => s, (e: Error) => e);
    mock.timers.tick(600);
    const late = pool.acquire('m@x');
    mock.timers.tick(400); // the first waiter gives up; the second has 600 ms left
    assert.ok((await early) instanceof UpstreamBusyError);
    assert.equal(pool.stats().waiting, 1);
    pool.release('m@x', a, true);
    assert.equal(await late, a);
    await pool.close();
  });

  it('a waiter whose attempt finishes after the pool closed is told so, and the session is closed', async () => {
    const opens = [deferred<UpstreamSmtpSession>(), deferred<UpstreamSmtpSession>()];
    let n = 0;
    const pool = new UpstreamPool(() => opens[n++]!.promise, { maxPerMailbox: 1, waitMs: 60_000, idleMs: 60_000 }, silent);
    const a = fakeSession('a');
    const first = pool.acquire('m@x');
    opens[0]!.resolve(a);
    await first;
    const waiting = pool.acquire('m@x').then((s) => s, (e: Error) => e);
    pool.release('m@x', a, false); // an attempt starts for the waiter
    await flush();
    await pool.close();
    const b = fakeSession('b');
    opens[1]!.resolve(b);
    assert.match(((await waiting) as Error).message, /upstream pool closed/);
    assert.equal(b.closed, true);
  });

  it('hands a failed attempt\'s turn to the next waiter, each within its own wait', async () => {
    mock.timers.enable({ apis: ['setTimeout'] });
    const a = fakeSession('a');
    let n = 0;
    const pool = new UpstreamPool(
      async () => {
        if (n++ === 0) return a;
        throw new Error('upstream down');
      },
      { maxPerMailbox: 1, waitMs: 1000, idleMs: 60_000 },
      silent,
    );
    await pool.acquire('m@x');
    const w1 = pool.acquire('m@x').then((s) => s, (e: Error) => e);
    const w2 = pool.acquire('m@x').then((s) => s, (e: Error) => e);
    pool.release('m@x', a, false);
    const [e1, e2] = await Promise.all([w1, w2]);
    assert.match((e1 as Error).message, /upstream down/);
    assert.match((e2 as Error).message, /upstream down/);
    assert.deepEqual(pool.stats(), { busy: 0, idle: 0, waiting: 0 });
    await pool.close();
  });
});
