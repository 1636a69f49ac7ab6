import assert from 'node:assert/strict';
import { once } from 'node:events';
import { after, before, describe, it } from 'node:test';
import { Redis } from 'ioredis';
import { silentEventLogger } from '../../src/core/event-logger.js';
import { RedisRequestSlots } from '../../src/rate-limit/redis-request-slots.js';
import { GraphRequestSlots } from '../../src/upstream/graph/graph-request-slots.js';
import { startRedis, type TestRedis } from '../helpers/redis-server.js';

/**
 * Graph's 4 requests per mailbox over every instance (rate-limit/redis-request-slots.ts), on a real Redis: two
 * instances' slots share one count; a waiting request gets the slot another instance releases; a slot whose holder
 * died (never released) frees itself when its lease ends; a wait that runs out is null.
 */
describe('RedisRequestSlots (real Redis)', () => {
  let server: TestRedis;
  const clients: Redis[] = [];
  const make = (client: Redis, leaseMs = 60_000, waitMs = 5_000) =>
    new RedisRequestSlots(client, server.prefix, { limit: 4, leaseMs, waitMs, pollMs: 20 }, new GraphRequestSlots(4, waitMs), silentEventLogger);

  before(async () => {
    server = await startRedis({ own: true });
    for (let i = 0; i < 2; i++) {
      const client = new Redis(server.url);
      client.on('error', () => {});
      await once(client, 'ready');
      clients.push(client);
    }
  });
  after(async () => {
    for (const c of clients) c.disconnect();
    await server?.close();
  });

  it('two instances share 4 slots; a waiter gets the one the other instance releases', async () => {
    const a = make(clients[0]!);
    const b = make(clients[1]!, 60_000, 300);
    const held = await Promise.all([a.acquire('k1'), a.acquire('k1'), b.acquire('k1'), b.acquire('k1')]);
    assert.ok(held.every((r) => r !== null));
    assert.equal(await b.acquire('k1'), null, 'a fifth waits out its 300 ms and gets none');
    const waiting = a.acquire('k1');
    held[2]!(); // released by the other instance
    const got = await waiting;
    assert.ok(got, 'the waiter on the first instance got the slot the second released');
    got();
    for (const release of [held[0]!, held[1]!, held[3]!]) release();
    assert.equal(await clients[0]!.zcard(`${server.prefix}slots:{k1}`), 0);
  });

  it("a dead holder's slots free themselves when their leases end", async () => {
    const crashed = make(clients[0]!, 300);
    for (let i = 0; i < 4; i++) assert.ok(await crashed.acquire('k2')); // never released: the instance "died"
    const started = Date.now();
    const release = await make(clients[1]!, 60_000, 5_000).acquire('k2');
    assert.ok(release, 'a slot freed up when a lease ended');
    assert.ok(Date.now() - started >= 200, 'not before the lease ended');
    release();
  });
});
