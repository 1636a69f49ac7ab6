import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { canonicalIp, limitingAddress, NetworkList, parseCidr } from '../../../src/core/network-list.js';

describe('network-list', () => {
  it('limits IPv4 per address and IPv6 per /64, whatever the textual form', () => {
    const table: [string, string][] = [
      ['192.0.2.1', '192.0.2.1'],
      ['::ffff:192.0.2.1', '192.0.2.1'],
      ['2001:db8:1:2:3:4:5:6', '2001:db8:1:2::/64'],
      ['2001:0db8:0001:0002:ffff::1', '2001:db8:1:2::/64'],
      ['2001:db8::1', '2001:db8:0:0::/64'],
      ['2001:DB8::', '2001:db8:0:0::/64'],
      ['::1', '0:0:0:0::/64'],
      ['fe80::1%eth0', 'fe80:0:0:0::/64'],
      ['64:ff9b::192.0.2.33', '64:ff9b:0:0::/64'],
      ['1:2:3:4::192.0.2.33', '1:2:3:4::/64'],
    ];
    for (const [ip, expected] of table) assert.equal(limitingAddress(ip), expected, ip);
  });

  it('parses CIDRs and answers membership for both families, mapped IPv4 included', () => {
    assert.deepEqual(parseCidr('10.0.0.0/8'), { address: '10.0.0.0', prefix: 8, family: 'ipv4' });
    assert.deepEqual(parseCidr('2001:db8::/32'), { address: '2001:db8::', prefix: 32, family: 'ipv6' });
    assert.deepEqual(parseCidr('192.0.2.7'), { address: '192.0.2.7', prefix: 32, family: 'ipv4' });
    for (const bad of ['10.0.0.0/33', '10.0.0/8', 'x', '10.0.0.0/8/9', '2001:db8::/129', '10.0.0.0/-1']) assert.equal(parseCidr(bad), null, bad);
    const list = new NetworkList(['10.0.0.0/8', '2001:db8::/32']);
    assert.equal(list.contains('10.1.2.3'), true);
    assert.equal(list.contains('::ffff:10.1.2.3'), true);
    assert.equal(list.contains('2001:db8:ffff::1'), true);
    assert.equal(list.contains('11.0.0.1'), false);
    assert.equal(list.contains('not an ip'), false);
    assert.throws(() => new NetworkList(['10.0.0.0/40']), /invalid network/);
    assert.equal(canonicalIp('::FFFF:10.0.0.1'), '10.0.0.1');
  });
});
