import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import type { PasswordHasher } from '../../../src/core/password-hasher.js';
import { BoundedPasswordHasher } from '../../../src/credentials/bounded-password-hasher.js';

/** A hasher whose verifications finish only when the test releases them. */
class GatedHasher implements PasswordHasher {
  running = 0;
  peak = 0;
  private gates: (() => void)[] = [];
  async hash(): Promise<string> {
    return 'h';
  }
  async verify(): Promise<boolean> {
    this.running++;
    this.peak = Math.max(this.peak, this.running);
    await new Promise<void>((resolve) => this.gates.push(resolve));
    this.running--;
    return true;
  }
  needsRehash(): boolean {
    return false;
  }
  releaseAll(): void {
    const gates = this.gates;
    this.gates = [];
    gates.forEach((g) => g());
  }
}

const tick = () => new Promise((r) => setImmediate(r));

describe('BoundedPasswordHasher', () => {
  it('runs at most `concurrency` at once, queues up to the limit, and refuses beyond it at once', async () => {
    const inner = new GatedHasher();
    const bounded = new BoundedPasswordHasher(inner, 2, 3);
    const accepted = Array.from({ length: 5 }, () => bounded.verify('h', 'p'));
    await tick();
    assert.equal(inner.running, 2);
    assert.equal(bounded.queueLength, 3);
    await assert.rejects(bounded.verify('h', 'p'), { code: 'PG_OVERLOADED' });
    while (inner.running > 0 || bounded.queueLength > 0) {
      inner.releaseAll();
      await tick();
    }
    assert.deepEqual(await Promise.all(accepted), [true, true, true, true, true]);
    assert.equal(inner.peak, 2);
    assert.equal(bounded.queueLength, 0);
    // The slots were all handed back.
    const again = [bounded.verify('h', 'p'), bounded.verify('h', 'p')];
    await tick();
    assert.equal(inner.running, 2);
    inner.releaseAll();
    await Promise.all(again);
  });
});
