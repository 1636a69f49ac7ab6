import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { MemoryContinuousErrorMemory } from '../../../src/rate-limit/memory-continuous-error-memory.js';

const refusal = { code: 550, enhanced: '5.2.252', text: 'SendAsDenied' };
const limits = { threshold: 3, windowMs: 60_000, holdMs: 60_000 };

describe('MemoryContinuousErrorMemory', () => {
  it('holds a key at the threshold, with the refusal, for the hold; then lets it go', async () => {
    const clock = { now: 1_000_000 };
    const memory = new MemoryContinuousErrorMemory(() => clock.now);
    assert.equal(await memory.record('k', refusal, limits), false);
    assert.equal(await memory.record('k', refusal, limits), false);
    assert.equal(await memory.held('k'), null);
    assert.equal(await memory.record('k', refusal, limits), true);
    assert.deepEqual(await memory.held('k'), { refusal, remainingMs: 60_000 });
    assert.equal(await memory.held('other'), null);
    clock.now += 59_999;
    assert.equal((await memory.held('k'))?.remainingMs, 1);
    clock.now += 1;
    assert.equal(await memory.held('k'), null);
  });

  it('counts within the window only, and forget() starts the count again', async () => {
    const clock = { now: 0 };
    const memory = new MemoryContinuousErrorMemory(() => clock.now);
    await memory.record('k', refusal, limits);
    await memory.record('k', refusal, limits);
    clock.now += 60_000; // the window of the first refusal is over
    assert.equal(await memory.record('k', refusal, limits), false);
    await memory.forget('k');
    assert.equal(await memory.record('k', refusal, limits), false);
    assert.equal(await memory.record('k', refusal, limits), false);
    assert.equal(await memory.record('k', refusal, limits), true);
    await memory.forget('k');
    assert.notEqual(await memory.held('k'), null, 'a success does not lift a hold in force');
  });

  it('stays bounded: past maxEntries the oldest key is forgotten', async () => {
    const memory = new MemoryContinuousErrorMemory(() => 0, 2);
    const one = { ...limits, threshold: 1 };
    await memory.record('a', refusal, one);
    await memory.record('b', refusal, one);
    await memory.record('c', refusal, one);
    assert.equal(await memory.held('a'), null);
    assert.notEqual(await memory.held('b'), null);
    assert.notEqual(await memory.held('c'), null);
  });
});
