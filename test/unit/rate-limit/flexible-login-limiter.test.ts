import assert from 'node:assert/strict';
import { afterEach, beforeEach, describe, it, mock } from 'node:test';
import { RateLimiterMemory } from 'rate-limiter-flexible';
import type { RateLimitConfig } from '../../../src/config/config-schema.js';
import { GatewayError } from '../../../src/core/gateway-error.js';
import type { LoginAttemptKey } from '../../../src/core/login-limiter.js';
import { FlexibleLoginLimiter } from '../../../src/rate-limit/flexible-login-limiter.js';

// RLF's memory limiter reads Date.now() and expires keys with setTimeout: mock timers move both, so hours pass at once.
beforeEach(() => mock.timers.enable({ apis: ['setTimeout', 'Date'], now: Date.UTC(2026, 0, 5) }));
afterEach(() => {
  mock.timers.reset();
  mock.restoreAll();
});

const SECOND = 1000;

type Overrides = { [K in 'pair' | 'ip' | 'user']?: Partial<RateLimitConfig[K]> };

function config(overrides: Overrides = {}): RateLimitConfig {
  return {
    trusted_networks: [],
    pair: { max_failures: 10, block_seconds: 900, max_block_seconds: 86_400, ...overrides.pair },
    ip: { burst_failures: 1000, burst_seconds: 60, daily_failures: 1000, block_seconds: 86_400, ...overrides.ip },
    user: { max_distinct_failures: 100, lock_seconds: 3600, known_ip_days: 20, ...overrides.user },
  };
}

const alice = (ip = '198.51.100.7', trusted = false): LoginAttemptKey => ({ username: 'alice', ip, trusted });

async function fail(limiter: FlexibleLoginLimiter, key: LoginAttemptKey, times: number, fingerprint = (i: number) => `fp-${i}`) {
  let last = await limiter.recordFailure(key, fingerprint(0));
  for (let i = 1; i < times; i++) last = await limiter.recordFailure(key, fingerprint(i));
  return last;
}

describe('FlexibleLoginLimiter (memory)', () => {
  it('blocks a pair after max_failures consecutive failures; a success clears the count', async () => {
    const limiter = new FlexibleLoginLimiter(config({ pair: { max_failures: 3 } }), null);
    assert.deepEqual(await fail(limiter, alice(), 2), { blocked: false });
    await limiter.recordSuccess(alice());
    assert.deepEqual(await fail(limiter, alice(), 2, (i) => `fp-again-${i}`), { blocked: false }, 'the count started again after the success');
    assert.deepEqual(await limiter.check(alice()), { blocked: false });

    assert.deepEqual(await limiter.recordFailure(alice(), 'fp-x'), { blocked: true, scope: 'pair', retryAfterMs: 900 * SECOND });
    assert.deepEqual(await limiter.check(alice()), { blocked: true, scope: 'pair', retryAfterMs: 900 * SECOND });
    await limiter.recordSuccess(alice());
    assert.equal((await limiter.check(alice())).blocked, true, 'a success does not lift a block in force');
    mock.timers.tick(900 * SECOND);
    assert.deepEqual(await limiter.check(alice()), { blocked: false });
  });

  it('doubles the pair block on each repeat within a day, up to max_block_seconds', async () => {
    const limiter = new FlexibleLoginLimiter(config({ pair: { max_failures: 3, block_seconds: 1, max_block_seconds: 4 } }), null);
    const blocks: number[] = [];
    for (let round = 0; round < 4; round++) {
      // Distinct wrong passwords each round: a repeated one counts once.
      const verdict = await fail(limiter, alice(), 3, (i) => `round-${round}-${i}`);
      assert.ok(verdict.blocked);
      blocks.push(verdict.retryAfterMs);
      mock.timers.tick(verdict.retryAfterMs);
      assert.deepEqual(await limiter.check(alice()), { blocked: false }, `round ${round}: the block ended`);
      assert.deepEqual(await fail(limiter, alice(), 2, (i) => `after-${round}-${i}`), { blocked: false }, `round ${round}: failures after a block count afresh`);
      await limiter.recordSuccess(alice());
    }
    assert.deepEqual(blocks, [1, 2, 4, 4].map((s) => s * SECOND));

    // Strikes are remembered for a day after the last block ended, not after it began.
    mock.timers.tick((86_400 - 2) * SECOND);
    assert.deepEqual(await fail(limiter, alice(), 3, (i) => `late-${i}`), { blocked: true, scope: 'pair', retryAfterMs: 4 * SECOND });
    mock.timers.tick((4 + 86_400) * SECOND);
    const afterQuietDay = await fail(limiter, alice(), 3, (i) => `quiet-${i}`);
    assert.deepEqual(afterQuietDay, { blocked: true, scope: 'pair', retryAfterMs: 1 * SECOND }, 'a quiet day forgets the strikes');
  });

  it('blocks an ip for the rest of the burst window after more than burst_failures', async () => {
    const limiter = new FlexibleLoginLimiter(config({ ip: { burst_failures: 5, burst_seconds: 60 } }), null);
    const ip = '203.0.113.9';
    for (let i = 0; i < 5; i++) {
      assert.deepEqual(await limiter.recordFailure({ username: `user${i}`, ip, trusted: false }, 'fp'), { blocked: false });
    }
    mock.timers.tick(10 * SECOND);
    assert.deepEqual(await limiter.recordFailure({ username: 'user5', ip, trusted: false }, 'fp'), {
      blocked: true,
      scope: 'ip',
      retryAfterMs: 50 * SECOND,
    });
    const otherUser: LoginAttemptKey = { username: 'someone-else', ip, trusted: false };
    assert.deepEqual(await limiter.check(otherUser), { blocked: true, scope: 'ip', retryAfterMs: 50 * SECOND });
    assert.deepEqual(await limiter.check({ username: 'someone-else', ip: '203.0.113.10', trusted: false }), { blocked: false });
    mock.timers.tick(50 * SECOND);
    assert.deepEqual(await limiter.check(otherUser), { blocked: false });
  });

  it('blocks an ip for block_seconds after more than daily_failures in a day', async () => {
    const limiter = new FlexibleLoginLimiter(config({ ip: { daily_failures: 30, block_seconds: 7200 } }), null);
    const ip = '203.0.113.9';
    const from = (username: string): LoginAttemptKey => ({ username, ip, trusted: false });
    for (let i = 0; i < 30; i++) {
      assert.deepEqual(await limiter.recordFailure(from(`user${i}`), 'fp'), { blocked: false });
      mock.timers.tick(40 * 60 * SECOND); // 30 failures over 20 hours: slow, but still one day
    }
    assert.deepEqual(await limiter.recordFailure(from('user30'), 'fp'), { blocked: true, scope: 'ip', retryAfterMs: 7200 * SECOND });
    mock.timers.tick(7199 * SECOND);
    assert.deepEqual(await limiter.check(from('x')), { blocked: true, scope: 'ip', retryAfterMs: 1 * SECOND });
    mock.timers.tick(1 * SECOND);
    assert.deepEqual(await limiter.check(from('x')), { blocked: false });
    assert.deepEqual(await limiter.recordFailure(from('x'), 'fp'), { blocked: false }, 'the count starts afresh after the block');
  });

  it('counts a repeated failure (same user, ip, password) once towards the pair: a stale device blocks nobody', async () => {
    const limiter = new FlexibleLoginLimiter(config({ pair: { max_failures: 3 } }), null);
    for (let i = 0; i < 50; i++) assert.deepEqual(await limiter.recordFailure(alice(), 'stale'), { blocked: false });
    assert.deepEqual(await limiter.check(alice()), { blocked: false });
    assert.equal((await fail(limiter, alice(), 2, (i) => `guess-${i}`)).blocked, true, 'distinct guesses still block');
  });

  it('counts distinct wrong passwords per user: one stale password repeated counts once', async () => {
    const limiter = new FlexibleLoginLimiter(config(), null);
    // A different ip each time, so neither the pair nor the ip rule gets in the way.
    const from = (n: number): LoginAttemptKey => ({ username: 'alice', ip: `10.${n >> 16}.${(n >> 8) & 255}.${n & 255}`, trusted: false });
    for (let n = 0; n < 500; n++) assert.deepEqual(await limiter.recordFailure(from(n), 'stale-password'), { blocked: false });
    assert.deepEqual(await limiter.check(from(9999)), { blocked: false });

    for (let n = 1; n < 100; n++) assert.deepEqual(await limiter.recordFailure(from(1000 + n), `guess-${n}`), { blocked: false });
    // 100 distinct so far (the stale one and 99 guesses): the 101st locks the user.
    assert.deepEqual(await limiter.recordFailure(from(2000), 'guess-100'), { blocked: true, scope: 'user', retryAfterMs: 3600 * SECOND });
    assert.deepEqual(await limiter.check(from(3000)), { blocked: true, scope: 'user', retryAfterMs: 3600 * SECOND });
    assert.deepEqual(await limiter.check({ username: 'bob', ip: '10.0.11.184', trusted: false }), { blocked: false }, 'only alice');
    assert.deepEqual(await limiter.check({ ...from(3000), trusted: true }), { blocked: false }, 'trusted networks are not locked out');
    mock.timers.tick(3600 * SECOND);
    assert.deepEqual(await limiter.check(from(3000)), { blocked: false });
  });

  it('never locks a user out of an ip it logged in from recently (known_ip_days)', async () => {
    const limiter = new FlexibleLoginLimiter(config({ user: { max_distinct_failures: 3, known_ip_days: 20 } }), null);
    const home: LoginAttemptKey = { username: 'carol', ip: '203.0.113.50', trusted: false };
    const elsewhere: LoginAttemptKey = { username: 'carol', ip: '203.0.113.51', trusted: false };
    await limiter.recordSuccess(home);
    const attacker = (n: number): LoginAttemptKey => ({ username: 'carol', ip: `198.18.0.${n}`, trusted: false });
    for (let n = 1; n <= 4; n++) await limiter.recordFailure(attacker(n), `guess-${n}`);
    assert.equal((await limiter.check(elsewhere)).blocked, true, 'the user lock holds where carol never logged in');
    assert.deepEqual(await limiter.check(home), { blocked: false }, 'her own network stays open');
    mock.timers.tick(21 * 86_400 * SECOND);
    for (let n = 1; n <= 4; n++) await limiter.recordFailure(attacker(n), `guess-again-${n}`);
    assert.equal((await limiter.check(home)).blocked, true, 'the exemption ends after known_ip_days');
    const off = new FlexibleLoginLimiter(config({ user: { max_distinct_failures: 3, known_ip_days: 0 } }), null);
    await off.recordSuccess(home);
    for (let n = 1; n <= 4; n++) await off.recordFailure(attacker(n), `guess-${n}`);
    assert.equal((await off.check(home)).blocked, true, 'known_ip_days 0 turns it off');
  });

  it('exempts trusted clients from the ip and user rules, never from the pair rule', async () => {
    const limiter = new FlexibleLoginLimiter(
      config({ pair: { max_failures: 10 }, ip: { burst_failures: 3, daily_failures: 5 }, user: { max_distinct_failures: 3 } }),
      null,
    );
    const office = '192.0.2.10';
    for (let i = 0; i < 40; i++) {
      assert.deepEqual(await limiter.recordFailure({ username: `user${i}`, ip: office, trusted: true }, 'fp'), { blocked: false });
    }
    const trustedDave: LoginAttemptKey = { username: 'dave', ip: office, trusted: true };
    assert.deepEqual(await fail(limiter, trustedDave, 9), { blocked: false }, '9 distinct wrong passwords, max 3, but trusted');

    // Nothing reached the ip or user counters: the same ip and user, untrusted, start from zero.
    assert.deepEqual(await limiter.check({ ...trustedDave, trusted: false }), { blocked: false });
    const untrustedDave: LoginAttemptKey = { username: 'dave', ip: '203.0.113.5', trusted: false };
    assert.deepEqual(await fail(limiter, untrustedDave, 3, (i) => `new-${i}`), { blocked: false }, 'user count is 3, not 12');
    const carol: LoginAttemptKey = { username: 'carol', ip: office, trusted: false };
    assert.deepEqual(await fail(limiter, carol, 3), { blocked: false }, 'ip burst count is 3, not 52');

    const trustedAlice = alice(office, true);
    assert.deepEqual(await fail(limiter, trustedAlice, 9), { blocked: false });
    assert.deepEqual(await limiter.recordFailure(trustedAlice, 'fp-9'), { blocked: true, scope: 'pair', retryAfterMs: 900 * SECOND });
    assert.equal((await limiter.check(trustedAlice)).blocked, true);
  });

  it('an attacker locking a pair from one ip does not block the same user from another ip', async () => {
    const limiter = new FlexibleLoginLimiter(config(), null);
    const attacker = alice('203.0.113.66');
    assert.equal((await fail(limiter, attacker, 10)).blocked, true);
    assert.equal((await limiter.check(attacker)).blocked, true);

    const home = alice('198.51.100.20');
    assert.deepEqual(await limiter.check(home), { blocked: false });
    assert.deepEqual(await limiter.recordFailure(home, 'typo'), { blocked: false });
    await limiter.recordSuccess(home);
    assert.equal((await limiter.check(attacker)).blocked, true, 'and her success does not free the attacker');
  });

  it('never throws when even in-memory state fails: that rule has no say, the error is reported', async () => {
    const errors: GatewayError[] = [];
    const limiter = new FlexibleLoginLimiter(config({ pair: { max_failures: 1 } }), null, (error) => errors.push(error));
    assert.equal((await limiter.recordFailure(alice(), 'fp')).blocked, true);

    const broken = () => Promise.reject(new Error('boom'));
    mock.method(RateLimiterMemory.prototype, 'get', broken);
    mock.method(RateLimiterMemory.prototype, 'consume', broken);
    mock.method(RateLimiterMemory.prototype, 'delete', broken);
    // Fail open per rule: a counter that cannot be read cannot refuse everyone (see check() for the reasoning).
    assert.deepEqual(await limiter.check(alice()), { blocked: false });
    assert.deepEqual(await limiter.recordFailure(alice(), 'fp'), { blocked: false });
    await limiter.recordSuccess(alice());
    assert.ok(errors.length >= 3);
    assert.ok(errors.every((e) => e instanceof GatewayError && e.code === 'PG_STORE_UNAVAILABLE' && e.cause instanceof Error));

    mock.restoreAll();
    assert.equal((await limiter.check(alice())).blocked, true, 'the block is still there once state can be read');
    await limiter.close();
    await limiter.close();
  });
});
