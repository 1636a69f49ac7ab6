// SocketAddress and isIP are pure address arithmetic: this module reads no socket (design.md habit 2).
import { isIP, SocketAddress } from 'node:net';

/**
 * Parser for the PROXY protocol header a load balancer prepends to a connection (HAProxy's
 * proxy-protocol.txt, versions 1 and 2). Pure: bytes in, a value out; the acceptor does the reading.
 */

export interface ProxyEndpoint {
  address: string;
  port: number;
}

export type ProxyParseResult =
  | { kind: 'incomplete' }
  | { kind: 'invalid'; reason: string }
  | {
      kind: 'ok';
      version: 1 | 2;
      /** 'local': the proxy's own connection (health check); the addresses are to be ignored (§2.2). */
      command: 'proxy' | 'local';
      /** 'unknown': v1 UNKNOWN or v2 AF_UNSPEC/LOCAL; the receiver uses the real connection's endpoints. */
      family: 'tcp4' | 'tcp6' | 'unknown';
      source: ProxyEndpoint | null;
      destination: ProxyEndpoint | null;
      /** Header bytes to skip; what follows is the client's own stream. */
      length: number;
    };

/** §2.1: a v1 line, CRLF included, is at most 107 bytes ("PROXY UNKNOWN" with two full IPv6 addresses). */
export const PROXY_V1_MAX_LENGTH = 107;
/**
 * §2.2 allows 16 + 65535 bytes; we cap a v2 header at 1 KiB. The 36 bytes of IPv6 addresses leave 972 bytes of
 * TLVs, more than the TLVs real load balancers send together (HAProxy: authority ≤ 255, unique id ≤ 128, ALPN,
 * CRC32C, SSL sub-TLVs; AWS NLB: VPC endpoint id; Azure: link id; GCP: PSC connection id).
 */
export const PROXY_V2_MAX_LENGTH = 1024;
/** The most bytes a reader needs to buffer before the parser answers ok or invalid. */
export const PROXY_HEADER_MAX_LENGTH = Math.max(PROXY_V1_MAX_LENGTH, PROXY_V2_MAX_LENGTH);

const V1_PREFIX = Buffer.from('PROXY ', 'latin1');
/** §2.2: the 12-byte v2 signature, chosen so it can never start a v1 line or a text protocol. */
const V2_SIGNATURE = Buffer.from([0x0d, 0x0a, 0x0d, 0x0a, 0x00, 0x0d, 0x0a, 0x51, 0x55, 0x49, 0x54, 0x0a]);
const V2_FIXED_LENGTH = 16;

const invalid = (reason: string): ProxyParseResult => ({ kind: 'invalid', reason });
const INCOMPLETE: ProxyParseResult = { kind: 'incomplete' };

/** Parses the header at the start of `buffer`: ok with its length, incomplete (read more), or invalid. */
export function parseProxyHeader(buffer: Buffer): ProxyParseResult {
  if (buffer.length === 0) return INCOMPLETE;
  if (buffer[0] === V1_PREFIX[0]) return parseV1(buffer);
  if (buffer[0] === V2_SIGNATURE[0]) return parseV2(buffer);
  return invalid('connection does not start with a PROXY header');
}

/** True when the first min(length) bytes of `buffer` equal those of `expected`. */
function startsLike(buffer: Buffer, expected: Buffer): boolean {
  const n = Math.min(buffer.length, expected.length);
  return buffer.subarray(0, n).equals(expected.subarray(0, n));
}

// ---- version 1 (§2.1): "PROXY" SP ("TCP4" | "TCP6" | "UNKNOWN") [SP src SP dst SP sport SP dport] CRLF ----

/** §2.1: decimal 0..65535, no leading zeroes (they could be read as octal). */
const V1_PORT = /^(?:0|[1-9][0-9]{0,4})$/;
/** §2.1: IPv6 is hex groups and colons (an embedded IPv4 tail is accepted); no zone id, no brackets. */
const V1_IPV6_CHARS = /^[0-9A-Fa-f:.]+$/;

function parseV1(buffer: Buffer): ProxyParseResult {
  if (!startsLike(buffer, V1_PREFIX)) return invalid('v1: line does not start with "PROXY "');
  // The CR may sit at index 105 at the latest, so that the CRLF ends within the first 107 bytes.
  const lastCr = PROXY_V1_MAX_LENGTH - 2;
  for (let i = 0; i < Math.min(buffer.length, lastCr + 1); i++) {
    const byte = buffer[i]!;
    if (byte === 0x0d) {
      if (i + 1 === buffer.length) return INCOMPLETE;
      if (buffer[i + 1] !== 0x0a) return invalid('v1: CR not followed by LF');
      return parseV1Line(buffer.subarray(0, i).toString('latin1'), i + 2);
    }
    // The line is printable US-ASCII; a bare LF, a NUL or a high byte cannot be part of a header.
    if (byte < 0x20 || byte > 0x7e) return invalid('v1: control or non-ASCII byte in the header line');
  }
  return buffer.length > lastCr ? invalid('v1: no CRLF within 107 bytes') : INCOMPLETE;
}

function parseV1Line(line: string, length: number): ProxyParseResult {
  const fields = line.split(' ');
  const protocol = fields[1];
  if (protocol === 'UNKNOWN') {
    // §2.1: for UNKNOWN the receiver must ignore whatever precedes the CRLF and use the real endpoints.
    return { kind: 'ok', version: 1, command: 'proxy', family: 'unknown', source: null, destination: null, length };
  }
  if (protocol !== 'TCP4' && protocol !== 'TCP6') return invalid('v1: protocol is not TCP4, TCP6 or UNKNOWN');
  // Single spaces only: an empty field means a doubled, leading or trailing space.
  if (fields.length !== 6 || fields.some((f) => f === '')) return invalid('v1: expected "PROXY TCPx src dst sport dport"');
  const [, , srcText, dstText, srcPortText, dstPortText] = fields as [string, string, string, string, string, string];
  const family = protocol === 'TCP4' ? 'tcp4' : 'tcp6';
  const source = v1Address(srcText, family);
  const destination = v1Address(dstText, family);
  if (source === null || destination === null) return invalid(`v1: address is not a valid ${protocol} address`);
  const sourcePort = v1Port(srcPortText);
  const destinationPort = v1Port(dstPortText);
  if (sourcePort === null || destinationPort === null) return invalid('v1: port is not a decimal in 0-65535');
  return {
    kind: 'ok',
    version: 1,
    command: 'proxy',
    family,
    source: { address: source, port: sourcePort },
    destination: { address: destination, port: destinationPort },
    length,
  };
}

/** §2.1: the address must match the announced family; IPv6 is returned in node's canonical form. */
function v1Address(text: string, family: 'tcp4' | 'tcp6'): string | null {
  if (family === 'tcp4') return isIP(text) === 4 ? text : null; // node's isIP refuses leading zeroes too
  if (!V1_IPV6_CHARS.test(text) || isIP(text) !== 6) return null;
  return new SocketAddress({ address: text, family: 'ipv6' }).address;
}

function v1Port(text: string): number | null {
  if (!V1_PORT.test(text)) return null;
  const port = Number(text);
  return port <= 65535 ? port : null;
}

// ---- version 2 (§2.2): signature(12) ver_cmd(1) fam(1) len(2, big-endian) addresses TLVs ----

const V2_COMMAND_LOCAL = 0x0;
const V2_COMMAND_PROXY = 0x1;
/** §2.2 family/transport byte: AF_UNSPEC, TCP over IPv4, TCP over IPv6 (with their address block sizes). */
const V2_UNSPEC = 0x00;
const V2_TCP4 = 0x11;
const V2_TCP6 = 0x21;
const V2_ADDRESS_LENGTH: Record<number, number> = { [V2_UNSPEC]: 0, [V2_TCP4]: 12, [V2_TCP6]: 36 };

function parseV2(buffer: Buffer): ProxyParseResult {
  if (!startsLike(buffer, V2_SIGNATURE)) return invalid('v2: bad signature');
  if (buffer.length <= V2_SIGNATURE.length) return INCOMPLETE;
  const versionCommand = buffer[12]!;
  // §2.2: the high nibble is the version (2); the low nibble the command; other values must be rejected.
  if (versionCommand >> 4 !== 2) return invalid('v2: version is not 2');
  const command = versionCommand & 0x0f;
  if (command !== V2_COMMAND_LOCAL && command !== V2_COMMAND_PROXY) return invalid('v2: command is neither LOCAL nor PROXY');
  if (buffer.length < 14) return INCOMPLETE;
  const familyByte = buffer[13]!;
  // §2.2: for LOCAL the family is ignored; for PROXY only TCP makes sense on a mail listener (UDP, UNIX refused).
  const addressLength = V2_ADDRESS_LENGTH[familyByte];
  if (command === V2_COMMAND_PROXY && addressLength === undefined) {
    return invalid('v2: family/transport is not TCP over IPv4/IPv6 or UNSPEC');
  }
  if (buffer.length < V2_FIXED_LENGTH) return INCOMPLETE;
  const length = V2_FIXED_LENGTH + buffer.readUInt16BE(14);
  if (length > PROXY_V2_MAX_LENGTH) return invalid(`v2: header of ${length} bytes exceeds ${PROXY_V2_MAX_LENGTH}`);
  if (command === V2_COMMAND_LOCAL) {
    // §2.2: LOCAL (a health check from the proxy itself): use the real endpoints, discard the whole block.
    if (buffer.length < length) return INCOMPLETE;
    return { kind: 'ok', version: 2, command: 'local', family: 'unknown', source: null, destination: null, length };
  }
  if (length - V2_FIXED_LENGTH < addressLength!) return invalid('v2: length too short for the address block');
  if (buffer.length < length) return INCOMPLETE;
  // TLVs after the address block are covered by `length` and skipped: nothing here needs them.
  const block = buffer.subarray(V2_FIXED_LENGTH, length);
  if (familyByte === V2_TCP4) {
    return {
      kind: 'ok',
      version: 2,
      command: 'proxy',
      family: 'tcp4',
      source: { address: ipv4(block.subarray(0, 4)), port: block.readUInt16BE(8) },
      destination: { address: ipv4(block.subarray(4, 8)), port: block.readUInt16BE(10) },
      length,
    };
  }
  if (familyByte === V2_TCP6) {
    return {
      kind: 'ok',
      version: 2,
      command: 'proxy',
      family: 'tcp6',
      source: { address: ipv6(block.subarray(0, 16)), port: block.readUInt16BE(32) },
      destination: { address: ipv6(block.subarray(16, 32)), port: block.readUInt16BE(34) },
      length,
    };
  }
  // §2.2: PROXY over AF_UNSPEC: the receiver ignores the address information and uses the real endpoints.
  return { kind: 'ok', version: 2, command: 'proxy', family: 'unknown', source: null, destination: null, length };
}

function ipv4(bytes: Buffer): string {
  return Array.from(bytes).join('.');
}

/** Node's own rendering (libuv's, as in socket.remoteAddress): lower case, longest zero run as "::". */
function ipv6(bytes: Buffer): string {
  const groups: string[] = [];
  for (let i = 0; i < 16; i += 2) groups.push(bytes.readUInt16BE(i).toString(16));
  return new SocketAddress({ address: groups.join(':'), family: 'ipv6' }).address;
}
