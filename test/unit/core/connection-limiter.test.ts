import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import fc from 'fast-check';
import { ConnectionLimiter, type Admission } from '../../../src/core/connection-limiter.js';
import { NetworkList } from '../../../src/core/network-list.js';

const limiter = (maxTotal: number, maxPerIp: number, exempt: string[] = []) =>
  new ConnectionLimiter({ maxTotal, maxPerIp, exempt: new NetworkList(exempt) });

const release = (a: Admission) => {
  assert.ok(a.ok, 'expected an admission');
  a.release();
};

describe('ConnectionLimiter', () => {
  it('refuses an address at its cap while another address still gets in', () => {
    const l = limiter(10, 2);
    assert.ok(l.acquire('192.0.2.1').ok);
    assert.ok(l.acquire('192.0.2.1').ok);
    assert.deepEqual(l.acquire('192.0.2.1'), { ok: false, reason: 'per-ip' });
    assert.ok(l.acquire('192.0.2.2').ok);
    assert.equal(l.active, 3);
    assert.equal(l.activeFor('192.0.2.1'), 2);
  });

  it('refuses everyone at the total cap, and counts an address as one whatever its textual form', () => {
    const l = limiter(3, 2);
    assert.ok(l.acquire('192.0.2.1').ok);
    assert.deepEqual(l.acquire('::ffff:192.0.2.1').ok, true);
    assert.deepEqual(l.acquire('192.0.2.1'), { ok: false, reason: 'per-ip' });
    assert.ok(l.acquire('2001:db8::1').ok);
    assert.deepEqual(l.acquire('198.51.100.1'), { ok: false, reason: 'total' });
  });

  it('counts IPv6 by /64, so rotating addresses inside one /64 does not escape the cap', () => {
    const l = limiter(100, 2);
    assert.ok(l.acquire('2001:db8:1:2::1').ok);
    assert.ok(l.acquire('2001:db8:1:2::ffff').ok);
    assert.deepEqual(l.acquire('2001:db8:1:2:aaaa:bbbb:cccc:dddd'), { ok: false, reason: 'per-ip' });
    assert.ok(l.acquire('2001:db8:1:3::1').ok);
  });

  it('exempts trusted networks from the per-address cap but not from the total', () => {
    const l = limiter(5, 1, ['10.0.0.0/8']);
    for (let i = 0; i < 5; i++) assert.ok(l.acquire('10.1.2.3').ok, `connection ${i}`);
    assert.deepEqual(l.acquire('10.1.2.3'), { ok: false, reason: 'total' });
  });

  it('frees the slot on release, once however often release is called, and forgets idle addresses', () => {
    const l = limiter(2, 1);
    const a = l.acquire('192.0.2.1');
    assert.deepEqual(l.acquire('192.0.2.1'), { ok: false, reason: 'per-ip' });
    release(a);
    release(a);
    assert.equal(l.active, 0);
    assert.equal(l.addresses, 0);
    const b = l.acquire('192.0.2.1');
    const c = l.acquire('192.0.2.2');
    assert.ok(b.ok && c.ok);
    assert.equal(l.active, 2);
  });

  it('never exceeds either cap and ends empty, whatever the order of acquires and releases (property)', () => {
    const ips = ['192.0.2.1', '192.0.2.2', '2001:db8::1', '2001:db8::2', '10.0.0.1'];
    fc.assert(
      fc.property(
        fc.integer({ min: 1, max: 8 }),
        fc.integer({ min: 1, max: 4 }),
        fc.array(fc.tuple(fc.boolean(), fc.nat(ips.length - 1)), { maxLength: 200 }),
        (maxTotal, maxPerIp, steps) => {
          const l = limiter(maxTotal, maxPerIp, ['10.0.0.0/8']);
          const held: (() => void)[] = [];
          for (const [take, which] of steps) {
            if (take || held.length === 0) {
              const ip = ips[which]!;
              const before = l.active;
              const a = l.acquire(ip);
              if (a.ok) held.push(a.release);
              else assert.ok(a.reason === 'total' ? before >= maxTotal : l.activeFor(ip) >= maxPerIp);
            } else {
              held.splice(which % held.length, 1)[0]!();
            }
            assert.ok(l.active <= maxTotal);
            for (const ip of ips.slice(0, 4)) assert.ok(l.activeFor(ip) <= maxPerIp);
          }
          held.forEach((r) => r());
          assert.equal(l.active, 0);
          assert.equal(l.addresses, 0);
        },
      ),
    );
  });
});
