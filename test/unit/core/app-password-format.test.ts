import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { AppPasswordFormat } from '../../../src/core/app-password-format.js';

describe('AppPasswordFormat', () => {
  const format = new AppPasswordFormat(16, 12);

  it('generates 16 lowercase letters by default, grouped in fours for display', () => {
    const pw = format.generate();
    assert.match(pw, /^[a-z]{16}$/);
    assert.match(format.display(pw), /^[a-z]{4}-[a-z]{4}-[a-z]{4}-[a-z]{4}$/);
  });

  it('draws every letter (a uniform CSPRNG source, not a fixed subset)', () => {
    const seen = new Set<string>();
    for (let i = 0; i < 200; i++) for (const c of format.generate()) seen.add(c);
    assert.equal(seen.size, 26);
  });

  it('ignores spaces, dashes and case at login', () => {
    assert.equal(format.normalize('ABCD-efgh ijkl-MNOP'), 'abcdefghijklmnop');
    assert.equal(format.normalize(' abcd efgh ijkl mnop '), 'abcdefghijklmnop');
    assert.equal(format.normalize('abcdefghijklmnop'), 'abcdefghijklmnop');
  });

  it('refuses anything that is not letters of an accepted length', () => {
    for (const bad of ['', 'abcd', 'abcd-efgh-ijk', 'abcd-efgh-ijkl-mno1', 'abcd_efgh_ijkl_mnop', 'äbcd-efgh-ijkl-mnop', 'x'.repeat(65), 'a'.repeat(1000)]) {
      assert.equal(format.normalize(bad), null, bad);
    }
  });

  it('generates shorter passwords for devices that need them, never below min_length', () => {
    assert.match(format.generate(12), /^[a-z]{12}$/);
    assert.throws(() => format.generate(11), /length must be/);
    assert.equal(format.normalize('abcd-efgh-ijkl'), 'abcdefghijkl');
  });
});
