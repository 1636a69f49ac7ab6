import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import { openApp, type App } from '../../src/app.js';
import { createLogger } from '../../src/observability/logger.js';
import { startRedisSentinel, type TestRedisSentinel } from '../helpers/redis-sentinel.js';
import { makeTestConfig, type TestConfig } from '../helpers/test-config.js';
import { CLI_ACTOR } from '../../src/core/actor.js';

/** Two instances on Redis through Sentinel (`redis.sentinels`), across a failover of the master to its replica. */
describe('scale-out on Redis through Sentinel', () => {
  let sentinel: TestRedisSentinel;
  const configs: TestConfig[] = [];
  let a: App;
  let b: App;

  before(async () => {
    sentinel = await startRedisSentinel();
    const open = async () => {
      const tc = makeTestConfig({ redis: { sentinels: sentinel.sentinels, sentinel_name: sentinel.name, key_prefix: sentinel.prefix } });
      configs.push(tc);
      return openApp(tc.config, { logger: createLogger('silent') });
    };
    a = await open();
    b = await open();
  });

  after(async () => {
    await a?.close();
    await b?.close();
    for (const tc of configs) tc.cleanup();
    await sentinel?.close();
  });

  it('shares passwords and revocations between instances found through the sentinel', async () => {
    const { password, view } = await a.admin.appPasswords.create(CLI_ACTOR, { username: 'sentinel@example.com', name: 'Scanner' });
    assert.equal((await b.verifier.verify('sentinel@example.com', password)).ok, true);
    const heard: string[][] = [];
    b.revocations!.subscribe((ids) => heard.push(ids));
    // The subscription connects on its own connection; an announcement made before it is in place is not heard
    // (the registry's polling covers that case), so revoke again (each revocation is announced) until heard.
    const deadline = Date.now() + 5000;
    await a.admin.appPasswords.revoke(CLI_ACTOR, view.id);
    while (heard.length === 0 && Date.now() < deadline) {
      await new Promise((r) => setTimeout(r, 50));
      if (heard.length === 0) await a.admin.appPasswords.revoke(CLI_ACTOR, view.id);
    }
    assert.deepEqual(heard[0], [view.id]);
  });

  it('follows a failover: what was written before is there, and writes go to the new master', async () => {
    const { password } = await a.admin.appPasswords.create(CLI_ACTOR, { username: 'failover@example.com', name: 'Printer' });
    await sentinel.synced();
    const old = await sentinel.masterPort();
    const promoted = await sentinel.failover();
    assert.notEqual(promoted, old);
    // Until the clients reconnect to the new master a command may fail (temporary): retry for a bounded time.
    const eventually = async <T>(work: () => Promise<T>): Promise<T> => {
      const deadline = Date.now() + 20_000;
      for (;;) {
        try {
          return await work();
        } catch (error) {
          if (Date.now() > deadline) throw error;
          await new Promise((r) => setTimeout(r, 200));
        }
      }
    };
    const verified = await eventually(() => b.verifier.verify('failover@example.com', password));
    assert.equal(verified.ok, true);
    const created = await eventually(() => b.admin.appPasswords.create(CLI_ACTOR, { username: 'after@example.com', name: 'Phone' }));
    assert.equal((await eventually(() => a.verifier.verify('after@example.com', created.password))).ok, true);
  });
});
