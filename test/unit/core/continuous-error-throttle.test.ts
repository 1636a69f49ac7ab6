import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { ContinuousErrorThrottle, keyOf } from '../../../src/core/continuous-error-throttle.js';
import type { ContinuousErrorMemory } from '../../../src/core/continuous-error-memory.js';
import { MemoryContinuousErrorMemory } from '../../../src/rate-limit/memory-continuous-error-memory.js';

const silent = { info() {}, warn() {}, error() {}, debug() {} } as never;
const submission = { mailbox: 'scanner@contoso.com', sender: 'scanner@contoso.com', recipient: 'full@example.org' };
const reply = (code: number, enhanced: string | null, text = 'x') => ({ code, enhanced, lines: [text] });

describe('ContinuousErrorThrottle', () => {
  it('holds a submission after `threshold` refusals with 5.2.251-5.2.255, keyed by mailbox, sender and recipient', async () => {
    const throttle = new ContinuousErrorThrottle(new MemoryContinuousErrorMemory(() => 0), { threshold: 2, coolDownMs: 900_000 }, silent);
    await throttle.observe(submission, reply(550, '5.2.252', 'SendAsDenied; not allowed to send as'));
    assert.equal(await throttle.held(submission), null);
    await throttle.observe({ ...submission, sender: 'SCANNER@contoso.com' }, reply(550, '5.2.252', 'SendAsDenied; not allowed to send as'));
    assert.deepEqual(await throttle.held(submission), { refusal: { code: 550, enhanced: '5.2.252', text: 'SendAsDenied; not allowed to send as' }, remainingMs: 900_000 });
    assert.equal(await throttle.held({ ...submission, recipient: 'other@example.org' }), null, 'another recipient is not held');
  });

  it('ignores other refusals and temporary ones; a 250 resets the count', async () => {
    const throttle = new ContinuousErrorThrottle(new MemoryContinuousErrorMemory(() => 0), { threshold: 2, coolDownMs: 900_000 }, silent);
    for (const r of [reply(550, '5.1.10'), reply(452, '4.2.252'), reply(550, null), reply(550, '5.2.2')]) await throttle.observe(submission, r);
    assert.equal(await throttle.held(submission), null);
    await throttle.observe(submission, reply(554, '5.2.251'));
    await throttle.observe(submission, reply(250, '2.0.0'));
    await throttle.observe(submission, reply(554, '5.2.251'));
    assert.equal(await throttle.held(submission), null, 'not continuous: a message went through in between');
    await throttle.observe(submission, reply(554, '5.2.251'));
    assert.notEqual(await throttle.held(submission), null);
  });

  it('is off with a cool-down of 0, and lets submissions through when its memory fails', async () => {
    const off = new ContinuousErrorThrottle(new MemoryContinuousErrorMemory(() => 0), { threshold: 1, coolDownMs: 0 }, silent);
    await off.observe(submission, reply(550, '5.2.252'));
    assert.equal(await off.held(submission), null);
    const broken: ContinuousErrorMemory = {
      record: () => Promise.reject(new Error('redis down')),
      held: () => Promise.reject(new Error('redis down')),
      forget: () => Promise.reject(new Error('redis down')),
    };
    const warned: string[] = [];
    const throttle = new ContinuousErrorThrottle(broken, { threshold: 1, coolDownMs: 1000 }, { info() {}, error() {}, debug() {}, warn: (_f: unknown, msg: string) => void warned.push(msg) } as never);
    await throttle.observe(submission, reply(550, '5.2.252'));
    assert.equal(await throttle.held(submission), null);
    assert.deepEqual(warned, ['continuous-error memory unavailable', 'continuous-error memory unavailable']);
  });

  it('keys are fixed-length hashes, case-insensitive, never the addresses', () => {
    assert.equal(keyOf(submission), keyOf({ ...submission, recipient: 'FULL@example.org' }));
    assert.notEqual(keyOf(submission), keyOf({ ...submission, sender: 'other@contoso.com' }));
    assert.match(keyOf(submission), /^[A-Za-z0-9_-]{32}$/);
  });
});
