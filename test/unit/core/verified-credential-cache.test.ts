import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { VerifiedCredentialCache } from '../../../src/core/verified-credential-cache.js';

describe('VerifiedCredentialCache', () => {
  it('matches only the same user, password, record and hash, within the TTL', () => {
    const clock = { now: 0 };
    const cache = new VerifiedCredentialCache(1000, 10, () => clock.now);
    cache.remember('u', 'pw', 'ap_1', 'h1');
    assert.equal(cache.matches('u', 'pw', 'ap_1', 'h1'), true);
    assert.equal(cache.matches('u', 'other', 'ap_1', 'h1'), false);
    assert.equal(cache.matches('v', 'pw', 'ap_1', 'h1'), false);
    assert.equal(cache.matches('u', 'pw', 'ap_2', 'h1'), false, 'another record');
    cache.remember('u', 'pw', 'ap_1', 'h1');
    assert.equal(cache.matches('u', 'pw', 'ap_1', 'h2'), false, 're-hashed or replaced record');
    cache.remember('u', 'pw', 'ap_1', 'h1');
    clock.now = 1000;
    assert.equal(cache.matches('u', 'pw', 'ap_1', 'h1'), false, 'expired');
    assert.equal(cache.size, 0);
  });

  it('evicts the oldest entry at capacity, forgets a record on request, and can be turned off', () => {
    const cache = new VerifiedCredentialCache(60_000, 2, () => 0);
    cache.remember('a', 'pw', 'ap_a', 'h');
    cache.remember('b', 'pw', 'ap_b', 'h');
    cache.remember('c', 'pw', 'ap_c', 'h');
    assert.deepEqual(['a', 'b', 'c'].map((u) => cache.matches(u, 'pw', `ap_${u}`, 'h')), [false, true, true]);
    cache.forget('ap_b');
    assert.equal(cache.matches('b', 'pw', 'ap_b', 'h'), false);
    const off = new VerifiedCredentialCache(0, 10, () => 0);
    off.remember('a', 'pw', 'ap_a', 'h');
    assert.equal(off.matches('a', 'pw', 'ap_a', 'h'), false);
  });
});
