import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { describe, it } from 'node:test';
import {
  parseProxyHeader,
  PROXY_HEADER_MAX_LENGTH,
  PROXY_V2_MAX_LENGTH,
  type ProxyParseResult,
} from '../../../src/net/proxy-protocol-parser.js';

const SIGNATURE = [0x0d, 0x0a, 0x0d, 0x0a, 0x00, 0x0d, 0x0a, 0x51, 0x55, 0x49, 0x54, 0x0a];
const FFFF6 = 'ffff:ffff:ffff:ffff:ffff:ffff:ffff:ffff';

const u16 = (n: number) => [n >> 8, n & 0xff];
const ip4 = (text: string) => text.split('.').map(Number);
/** Sixteen bytes from eight hex groups written out in full. */
const ip6 = (groups: number[]) => groups.flatMap(u16);

/** A v2 header built byte by byte: signature, ver_cmd, fam, len, then the block (addresses + TLVs). */
function v2(verCmd: number, fam: number, block: number[], lengthField = block.length): Buffer {
  return Buffer.from([...SIGNATURE, verCmd, fam, ...u16(lengthField), ...block]);
}
const tlv = (type: number, value: number[]) => [type, ...u16(value.length), ...value];

const tcp4Block = [...ip4('192.0.2.10'), ...ip4('198.51.100.1'), ...u16(52_000), ...u16(587)];
const tcp6Block = [
  ...ip6([0x2001, 0xdb8, 0, 0, 0, 0, 0, 0x10]),
  ...ip6([0x2001, 0xdb8, 0xff, 0, 0, 0, 0, 1]),
  ...u16(40_001),
  ...u16(465),
];

type Ok = Extract<ProxyParseResult, { kind: 'ok' }>;
const ok = (fields: Omit<Ok, 'kind'>): Ok => ({ kind: 'ok', ...fields });
const tcp = (version: 1 | 2, family: 'tcp4' | 'tcp6', src: string, sport: number, dst: string, dport: number, length: number) =>
  ok({ version, command: 'proxy', family, source: { address: src, port: sport }, destination: { address: dst, port: dport }, length });
const unknown = (version: 1 | 2, command: 'proxy' | 'local', length: number) =>
  ok({ version, command, family: 'unknown', source: null, destination: null, length });

const valid: [name: string, header: Buffer, expected: Ok][] = [
  // proxy-protocol.txt §2.1 examples
  ['v1 TCP4, largest', Buffer.from('PROXY TCP4 255.255.255.255 255.255.255.255 65535 65535\r\n'), tcp(1, 'tcp4', '255.255.255.255', 65535, '255.255.255.255', 65535, 56)],
  ['v1 TCP6, largest', Buffer.from(`PROXY TCP6 ${FFFF6} ${FFFF6} 65535 65535\r\n`), tcp(1, 'tcp6', FFFF6, 65535, FFFF6, 65535, 104)],
  ['v1 UNKNOWN, shortest', Buffer.from('PROXY UNKNOWN\r\n'), unknown(1, 'proxy', 15)],
  ['v1 UNKNOWN, longest (107)', Buffer.from(`PROXY UNKNOWN ${FFFF6} ${FFFF6} 65535 65535\r\n`), unknown(1, 'proxy', 107)],
  ['v1 TCP4, spec example', Buffer.from('PROXY TCP4 192.168.0.1 192.168.0.11 56324 443\r\n'), tcp(1, 'tcp4', '192.168.0.1', 56324, '192.168.0.11', 443, 47)],
  // passgate's own cases
  ['v1 TCP4, port 0', Buffer.from('PROXY TCP4 10.0.0.1 10.0.0.2 0 25\r\n'), tcp(1, 'tcp4', '10.0.0.1', 0, '10.0.0.2', 25, 35)],
  ['v1 TCP6, rendered lower-case compressed', Buffer.from('PROXY TCP6 2001:DB8:0:0:0:0:0:10 2001:db8::1 40001 587\r\n'), tcp(1, 'tcp6', '2001:db8::10', 40001, '2001:db8::1', 587, 56)],
  ['v1 TCP6, IPv4-mapped kept as is', Buffer.from('PROXY TCP6 ::ffff:192.0.2.1 ::1 1234 587\r\n'), tcp(1, 'tcp6', '::ffff:192.0.2.1', 1234, '::1', 587, 42)],
  ['v2 PROXY TCP4', v2(0x21, 0x11, tcp4Block), tcp(2, 'tcp4', '192.0.2.10', 52000, '198.51.100.1', 587, 28)],
  ['v2 PROXY TCP6', v2(0x21, 0x21, tcp6Block), tcp(2, 'tcp6', '2001:db8::10', 40001, '2001:db8:ff::1', 465, 52)],
  ['v2 PROXY TCP6, IPv4-mapped', v2(0x21, 0x21, [...ip6([0, 0, 0, 0, 0, 0xffff, 0xc000, 0x0201]), ...ip6([0, 0, 0, 0, 0, 0, 0, 1]), ...u16(1), ...u16(2)]), tcp(2, 'tcp6', '::ffff:192.0.2.1', 1, '::1', 2, 52)],
  ['v2 LOCAL, no block (health check)', v2(0x20, 0x00, []), unknown(2, 'local', 16)],
  ['v2 LOCAL with addresses: ignored', v2(0x20, 0x11, tcp4Block), unknown(2, 'local', 28)],
  ['v2 LOCAL, family ignored even if UDP', v2(0x20, 0x12, tcp4Block), unknown(2, 'local', 28)],
  ['v2 PROXY AF_UNSPEC', v2(0x21, 0x00, []), unknown(2, 'proxy', 16)],
  ['v2 PROXY AF_UNSPEC with a block', v2(0x21, 0x00, [1, 2, 3, 4]), unknown(2, 'proxy', 20)],
  [
    'v2 PROXY TCP4 with TLVs (ALPN, authority, AWS VPC endpoint, NOOP)',
    v2(0x21, 0x11, [...tcp4Block, ...tlv(0x01, [...Buffer.from('smtp')]), ...tlv(0x02, [...Buffer.from('mail.example.com')]), ...tlv(0xea, [0x01, ...Buffer.from('vpce-0123456789abcdef0')]), ...tlv(0x04, [0, 0, 0])]),
    tcp(2, 'tcp4', '192.0.2.10', 52000, '198.51.100.1', 587, 28 + 7 + 19 + 26 + 6),
  ],
  ['v2 at the 1 KiB cap', v2(0x21, 0x11, [...tcp4Block, ...tlv(0x04, Array<number>(PROXY_V2_MAX_LENGTH - 28 - 3).fill(0))]), tcp(2, 'tcp4', '192.0.2.10', 52000, '198.51.100.1', 587, PROXY_V2_MAX_LENGTH)],
];

const line = (text: string) => Buffer.from(text, 'latin1');
const invalid: [name: string, bytes: Buffer][] = [
  // not a PROXY header at all: a trusted peer must send one
  ['SMTP command', line('EHLO x\r\n')],
  ['IMAP command', line('a1 LOGIN u p\r\n')],
  ['TLS ClientHello', Buffer.from([0x16, 0x03, 0x01, 0x02, 0x00, 0x01])],
  ['lower-case proxy', line('proxy TCP4 1.2.3.4 5.6.7.8 1 2\r\n')],
  ['PROXY without space', line('PROXYTCP4 1.2.3.4 5.6.7.8 1 2\r\n')],
  // v1 syntax
  ['v1 bare LF', line('PROXY TCP4 1.2.3.4 5.6.7.8 1 2\n')],
  ['v1 CR without LF', line('PROXY TCP4 1.2.3.4 5.6.7.8 1 2\rX')],
  ['v1 NUL byte', line('PROXY TCP4 1.2.3.4\0')],
  ['v1 high byte', line('PROXY TCP4 1.2.3.\xe9')],
  ['v1 unknown protocol', line('PROXY TCP5 1.2.3.4 5.6.7.8 1 2\r\n')],
  ['v1 UDP4', line('PROXY UDP4 1.2.3.4 5.6.7.8 1 2\r\n')],
  ['v1 UNKNOWN glued', line('PROXY UNKNOWNX\r\n')],
  ['v1 double space', line('PROXY TCP4  1.2.3.4 5.6.7.8 1 2\r\n')],
  ['v1 double space after PROXY', line('PROXY  TCP4 1.2.3.4 5.6.7.8 1 2\r\n')],
  ['v1 trailing space', line('PROXY TCP4 1.2.3.4 5.6.7.8 1 2 \r\n')],
  ['v1 tab separator', line('PROXY TCP4\t1.2.3.4 5.6.7.8 1 2\r\n')],
  ['v1 missing port', line('PROXY TCP4 1.2.3.4 5.6.7.8 1\r\n')],
  ['v1 extra field', line('PROXY TCP4 1.2.3.4 5.6.7.8 1 2 3\r\n')],
  ['v1 TCP4 only', line('PROXY TCP4\r\n')],
  // v1 ports
  ['v1 port 65536', line('PROXY TCP4 1.2.3.4 5.6.7.8 65536 2\r\n')],
  ['v1 port 99999', line('PROXY TCP4 1.2.3.4 5.6.7.8 1 99999\r\n')],
  ['v1 port leading zero', line('PROXY TCP4 1.2.3.4 5.6.7.8 01 2\r\n')],
  ['v1 port negative', line('PROXY TCP4 1.2.3.4 5.6.7.8 -1 2\r\n')],
  ['v1 port with sign', line('PROXY TCP4 1.2.3.4 5.6.7.8 +1 2\r\n')],
  ['v1 port hex', line('PROXY TCP4 1.2.3.4 5.6.7.8 0x19 2\r\n')],
  ['v1 port six digits', line('PROXY TCP4 1.2.3.4 5.6.7.8 000025 2\r\n')],
  // v1 addresses
  ['v1 octet 256', line('PROXY TCP4 256.2.3.4 5.6.7.8 1 2\r\n')],
  ['v1 octet leading zero', line('PROXY TCP4 01.2.3.4 5.6.7.8 1 2\r\n')],
  ['v1 three octets', line('PROXY TCP4 1.2.3 5.6.7.8 1 2\r\n')],
  ['v1 hostname', line('PROXY TCP4 lb.example 5.6.7.8 1 2\r\n')],
  ['v1 TCP4 with IPv6', line('PROXY TCP4 ::1 ::1 1 2\r\n')],
  ['v1 TCP6 with IPv4', line('PROXY TCP6 1.2.3.4 5.6.7.8 1 2\r\n')],
  ['v1 TCP6 mixed families', line('PROXY TCP6 ::1 5.6.7.8 1 2\r\n')],
  ['v1 TCP6 with zone id', line('PROXY TCP6 fe80::1%eth0 ::1 1 2\r\n')],
  ['v1 TCP6 bracketed', line('PROXY TCP6 [::1] ::1 1 2\r\n')],
  ['v1 TCP6 nine groups', line('PROXY TCP6 1:2:3:4:5:6:7:8:9 ::1 1 2\r\n')],
  ['v1 TCP6 two ::', line('PROXY TCP6 1::2::3 ::1 1 2\r\n')],
  // v1 length
  ['v1 108 bytes with CRLF', line(`PROXY UNKNOWN ${FFFF6} ${FFFF6} 65535 655350\r\n`)],
  ['v1 no CRLF in 107 bytes', line(`PROXY UNKNOWN ${'x'.repeat(200)}`)],
  // v2 header fields
  ['v2 bad signature', Buffer.from([...SIGNATURE.slice(0, 11), 0x0b, 0x21, 0x11, 0, 12, ...tcp4Block])],
  ['v2 version 1', v2(0x11, 0x11, tcp4Block)],
  ['v2 version 3', v2(0x31, 0x11, tcp4Block)],
  ['v2 command 2', v2(0x22, 0x11, tcp4Block)],
  ['v2 command 0xF', v2(0x2f, 0x11, tcp4Block)],
  ['v2 UDP over IPv4', v2(0x21, 0x12, tcp4Block)],
  ['v2 UDP over IPv6', v2(0x21, 0x22, tcp6Block)],
  ['v2 UNIX stream', v2(0x21, 0x31, Array<number>(216).fill(0))],
  ['v2 UNIX datagram', v2(0x21, 0x32, Array<number>(216).fill(0))],
  ['v2 AF_INET, unspecified transport', v2(0x21, 0x10, tcp4Block)],
  ['v2 family 4', v2(0x21, 0x41, tcp4Block)],
  ['v2 TCP4 block too short', v2(0x21, 0x11, tcp4Block.slice(0, 11))],
  ['v2 TCP6 with an IPv4 block', v2(0x21, 0x21, tcp4Block)],
  ['v2 one byte over the cap', v2(0x21, 0x11, [], PROXY_V2_MAX_LENGTH - 16 + 1)],
  ['v2 oversized (64 KiB)', v2(0x21, 0x11, [], 0xffff)],
];

describe('proxy-protocol-parser', () => {
  it('parses valid v1 and v2 headers (spec examples, TCP6, UNKNOWN, LOCAL, TLVs)', () => {
    for (const [name, header, expected] of valid) assert.deepEqual(parseProxyHeader(header), expected, name);
  });

  it('reports only the header length when the client stream follows', () => {
    for (const [name, header, expected] of valid) {
      const result = parseProxyHeader(Buffer.concat([header, Buffer.from('EHLO x\r\n')]));
      assert.deepEqual(result, expected, name);
    }
  });

  it('answers incomplete for every truncation of a valid header', () => {
    for (const [name, header] of valid) {
      for (let n = 0; n < header.length; n++) {
        assert.deepEqual(parseProxyHeader(header.subarray(0, n)), { kind: 'incomplete' }, `${name}, first ${n} bytes`);
      }
    }
  });

  it('refuses garbage, bad syntax, bad ports, bad addresses, wrong families and oversized headers', () => {
    for (const [name, bytes] of invalid) {
      const result = parseProxyHeader(bytes);
      assert.equal(result.kind, 'invalid', `${name}: ${JSON.stringify(result)}`);
      assert.ok(result.kind === 'invalid' && result.reason.length > 0);
    }
  });

  it('refuses as early as the bytes allow, without waiting for the rest', () => {
    assert.equal(parseProxyHeader(line('E')).kind, 'invalid');
    assert.equal(parseProxyHeader(line('PROXX')).kind, 'invalid');
    assert.equal(parseProxyHeader(Buffer.from([0x0d, 0x0a, 0x0d, 0x0b])).kind, 'invalid');
    assert.equal(parseProxyHeader(Buffer.from([...SIGNATURE, 0x31])).kind, 'invalid', 'version known at byte 13');
    assert.equal(parseProxyHeader(Buffer.from([...SIGNATURE, 0x21, 0x12])).kind, 'invalid', 'UDP known at byte 14');
    // The length field alone condemns an oversized header: no need to buffer 64 KiB first.
    assert.equal(parseProxyHeader(v2(0x21, 0x11, [], 0xffff)).kind, 'invalid');
    assert.equal(parseProxyHeader(line(`PROXY UNKNOWN ${'x'.repeat(92)}`)).kind, 'invalid', '106 bytes, no CR yet');
  });

  it('never asks for more than PROXY_HEADER_MAX_LENGTH bytes, whatever follows a valid prefix', () => {
    const prefixes = [line('PROXY '), line('PROXY TCP4 '), Buffer.from(SIGNATURE), Buffer.from([...SIGNATURE, 0x21, 0x11]), Buffer.from([...SIGNATURE, 0x20])];
    for (const prefix of prefixes) {
      for (let i = 0; i < 200; i++) {
        const bytes = Buffer.concat([prefix, randomBytes(PROXY_HEADER_MAX_LENGTH - prefix.length)]);
        assert.notEqual(parseProxyHeader(bytes).kind, 'incomplete', bytes.toString('hex'));
      }
      const printable = Buffer.concat([prefix, Buffer.alloc(PROXY_HEADER_MAX_LENGTH - prefix.length, 'a')]);
      assert.notEqual(parseProxyHeader(printable).kind, 'incomplete');
    }
  });
});
