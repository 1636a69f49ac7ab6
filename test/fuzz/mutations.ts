import fc from 'fast-check';

/**
 * A client transcript as data: what the client sends, write by write, and where it switches to TLS (after the
 * server accepted STARTTLS). Mutations turn real transcripts into the malformed ones fuzzing needs.
 */
export type Step = { send: Buffer } | { tls: true };

export const send = (data: string | Buffer): Step => ({ send: typeof data === 'string' ? Buffer.from(data, 'latin1') : data });
export const line = (text: string): Step => send(`${text}\r\n`);
export const STARTTLS_HANDSHAKE: Step = { tls: true };

/** How a client paces its writes: one reply at a time, all at once after the greeting, or before the greeting. */
export type Pacing = 'lockstep' | 'pipelined' | 'early';
export const pacing = (): fc.Arbitrary<Pacing> => fc.constantFrom<Pacing>('lockstep', 'lockstep', 'pipelined', 'early');

/**
 * One edit of a transcript. Indices are taken modulo the transcript's size when applied, so every mutation fits
 * every transcript and fast-check can shrink the numbers freely.
 */
export type Mutation =
  | { kind: 'flip'; step: number; at: number; bit: number }
  | { kind: 'insert'; step: number; at: number; bytes: Uint8Array }
  | { kind: 'delete'; step: number; at: number; length: number }
  | { kind: 'duplicate'; step: number }
  | { kind: 'drop'; step: number }
  | { kind: 'swap'; step: number; other: number }
  | { kind: 'split'; step: number; at: number }
  | { kind: 'join'; step: number }
  | { kind: 'line-ending'; step: number; ending: string }
  | { kind: 'huge-number'; step: number; number: string }
  | { kind: 'special-byte'; step: number; at: number; byte: number }
  | { kind: 'repeat'; step: number; times: number }
  | { kind: 'truncate'; step: number };

/** Octets that break parsers: NUL, CR, LF, DEL, 8-bit, and the IMAP/SMTP delimiters. */
const SPECIAL_BYTES = [0x00, 0x0d, 0x0a, 0x7f, 0x80, 0xc3, 0xff, 0x20, 0x22, 0x5c, 0x7b, 0x7d, 0x28, 0x29, 0x2a, 0x2b, 0x3a, 0x3c, 0x3e, 0x2e];
/** Line endings real and broken clients send. */
const ENDINGS = ['\r\n', '\n', '\r', '', '\r\r\n', '\n\r', '\r\n\r\n', '\0\r\n', ' \r\n'];
/** Sizes for literal announcements and SMTP numbers: at, past and far past every limit. */
const HUGE_NUMBERS = ['0', '1', '4096', '4097', '8192', '8193', '65536', '4294967295', '4294967296', '99999999999', '-1', '4096+', '8193+', '0+', '1+', ''];

const nat = (max = 1 << 16) => fc.nat({ max });

export function mutation(): fc.Arbitrary<Mutation> {
  return fc.oneof(
    fc.record({ kind: fc.constant('flip' as const), step: nat(), at: nat(), bit: fc.nat({ max: 7 }) }),
    fc.record({ kind: fc.constant('insert' as const), step: nat(), at: nat(), bytes: fc.uint8Array({ minLength: 1, maxLength: 16 }) }),
    fc.record({ kind: fc.constant('delete' as const), step: nat(), at: nat(), length: fc.integer({ min: 1, max: 32 }) }),
    fc.record({ kind: fc.constant('duplicate' as const), step: nat() }),
    fc.record({ kind: fc.constant('drop' as const), step: nat() }),
    fc.record({ kind: fc.constant('swap' as const), step: nat(), other: nat() }),
    fc.record({ kind: fc.constant('split' as const), step: nat(), at: nat() }),
    fc.record({ kind: fc.constant('join' as const), step: nat() }),
    fc.record({ kind: fc.constant('line-ending' as const), step: nat(), ending: fc.constantFrom(...ENDINGS) }),
    fc.record({ kind: fc.constant('huge-number' as const), step: nat(), number: fc.constantFrom(...HUGE_NUMBERS) }),
    fc.record({ kind: fc.constant('special-byte' as const), step: nat(), at: nat(), byte: fc.constantFrom(...SPECIAL_BYTES) }),
    fc.record({ kind: fc.constant('repeat' as const), step: nat(), times: fc.integer({ min: 2, max: 12 }) }),
    fc.record({ kind: fc.constant('truncate' as const), step: nat() }),
  );
}

/** Applies the mutations in order; TLS steps move, drop and duplicate like the others but are never edited. */
export function mutate(steps: readonly Step[], mutations: readonly Mutation[]): Step[] {
  let out = [...steps];
  for (const m of mutations) {
    if (out.length === 0) break;
    const i = m.step % out.length;
    const step = out[i]!;
    const bytes = 'send' in step ? step.send : null;
    const edit = (f: (b: Buffer) => Buffer | Buffer[]) => {
      if (bytes === null) return;
      const result = f(bytes);
      out.splice(i, 1, ...(Array.isArray(result) ? result : [result]).map((b) => ({ send: b })));
    };
    switch (m.kind) {
      case 'flip':
        edit((b) => {
          if (b.length === 0) return b;
          const copy = Buffer.from(b);
          copy[m.at % b.length]! ^= 1 << m.bit;
          return copy;
        });
        break;
      case 'insert':
        edit((b) => Buffer.concat([b.subarray(0, m.at % (b.length + 1)), m.bytes, b.subarray(m.at % (b.length + 1))]));
        break;
      case 'delete':
        edit((b) => (b.length === 0 ? b : Buffer.concat([b.subarray(0, m.at % b.length), b.subarray((m.at % b.length) + m.length)])));
        break;
      case 'duplicate':
        out.splice(i, 0, step);
        break;
      case 'drop':
        out.splice(i, 1);
        break;
      case 'swap': {
        const j = m.other % out.length;
        [out[i], out[j]] = [out[j]!, step];
        break;
      }
      case 'split':
        edit((b) => [b.subarray(0, m.at % (b.length + 1)), b.subarray(m.at % (b.length + 1))]);
        break;
      case 'join': {
        const next = out[i + 1];
        if (bytes !== null && next !== undefined && 'send' in next) out.splice(i, 2, { send: Buffer.concat([bytes, next.send]) });
        break;
      }
      case 'line-ending':
        edit((b) => Buffer.from(b.toString('latin1').replace(/\r?\n$/, '') + m.ending, 'latin1'));
        break;
      case 'huge-number':
        // A literal or AUTH argument size: replace the first {n} / number, or announce a literal at the line end.
        edit((b) => {
          const text = b.toString('latin1');
          const replaced = text.replace(/\{\d+\+?\}|\b\d+\b/, (found) => (found.startsWith('{') ? `{${m.number}}` : m.number));
          return Buffer.from(replaced !== text ? replaced : text.replace(/\r?\n?$/, ` {${m.number}}\r\n`), 'latin1');
        });
        break;
      case 'special-byte':
        edit((b) => Buffer.concat([b.subarray(0, m.at % (b.length + 1)), Buffer.from([m.byte]), b.subarray(m.at % (b.length + 1))]));
        break;
      case 'repeat':
        out.splice(i, 1, ...Array.from({ length: m.times }, () => step));
        break;
      case 'truncate':
        out = out.slice(0, i + 1);
        break;
    }
  }
  return out;
}

/** Bytes a protocol parser finds hard: the protocol's own tokens glued together with delimiters and odd octets. */
export function tokenSoup(tokens: readonly string[], maxTokens = 40): fc.Arbitrary<Buffer> {
  const piece = fc.oneof(
    { weight: 6, arbitrary: fc.constantFrom(...tokens) },
    { weight: 3, arbitrary: fc.constantFrom(' ', '\r\n', '\n', '\r', '"', '\\', '(', ')', '{', '}', '[', ']', '+', '*', '~', '=', ':', '<', '>', '@', '.') },
    { weight: 1, arbitrary: fc.uint8Array({ minLength: 1, maxLength: 4 }).map((b) => Buffer.from(b).toString('latin1')) },
    { weight: 1, arbitrary: fc.nat({ max: 1 << 20 }).map(String) },
  );
  return fc.array(piece, { maxLength: maxTokens }).map((parts) => Buffer.from(parts.join(''), 'latin1'));
}

/** Random input for a line protocol, as steps: raw bytes, token soup, and the whole of it cut at random points. */
export function randomSteps(tokens: readonly string[]): fc.Arbitrary<Step[]> {
  const chunk = fc.oneof(
    { weight: 2, arbitrary: fc.uint8Array({ maxLength: 200 }).map((b) => Buffer.from(b)) },
    { weight: 5, arbitrary: tokenSoup(tokens) },
  );
  return fc.array(chunk.map((b) => ({ send: b }) as Step), { minLength: 1, maxLength: 12 });
}

/** The bytes of all send steps, for checks that look at what the client sent. */
export function sentBytes(steps: readonly Step[]): Buffer {
  return Buffer.concat(steps.flatMap((s) => ('send' in s ? [s.send] : [])));
}

/** A short printable description of steps for failure messages (credentials in fuzz runs are test-only). */
export function describeSteps(steps: readonly Step[]): string {
  return steps.map((s) => ('send' in s ? JSON.stringify(s.send.toString('latin1')) : '<TLS>')).join(' ');
}
