import assert from 'node:assert/strict';
import fc from 'fast-check';
import { asAString, type ImapValue } from '../../src/imap/imap-command-parser.js';
import { ImapLineReader, type ImapLineReaderOptions, type ReaderEvent } from '../../src/imap/imap-line-reader.js';
import type { FuzzProperty, FuzzTarget } from './fuzz-property.js';
import { mutate, mutation, randomSteps, sentBytes, tokenSoup } from './mutations.js';
import { IMAP_TRANSCRIPTS } from './transcripts/imap-transcripts.js';

/**
 * Fuzzing the pure IMAP framing: ImapLineReader (lines, literals, SASL lines) over ImapCommandParser. Any bytes,
 * cut anywhere: no exception, every event well formed, the limits hold, memory stays bounded, and how the input
 * was chunked changes nothing.
 */

export const IMAP_TOKENS = [
  'a', 'A001', '1', '*', '+', 'LOGIN', 'login', 'AUTHENTICATE', 'PLAIN', 'LOGIN', 'CAPABILITY', 'NOOP', 'LOGOUT', 'STARTTLS', 'ID',
  'NIL', 'BODY[HEADER.FIELDS (FROM)]', 'BODY.PEEK[', '{0}', '{5}', '{4+}', '{4096+}', '{8193}', '~{3}', '{4294967295}', '{99999999999}',
  '"', '\\"', '\\\\', '"user"', '()', '((', '))', ' ', '\r\n', '\n', '\0', '\x80', 'AGZvbwBiYXI=', '=',
];

/** Limits small enough that random input reaches them, and the session's real ones. */
const LIMITS: ImapLineReaderOptions[] = [
  { maxLineBytes: 64, maxLiteralBytes: 32, maxNonSyncLiteralBytes: 16, maxPendingBytes: 128 },
  { maxLineBytes: 200, maxLiteralBytes: 300, maxPendingBytes: 1000 },
  { maxLineBytes: 8192, maxLiteralBytes: 8192, maxPendingBytes: 256 * 1024 },
];

const TAG = /^[\x21-\x7e]+$/;
const TAG_EXCLUDED = /[(){ %*"\\+]/;

/** Input: random bytes, protocol token soup, or a real transcript mutated (credentials are placeholders here). */
export function readerInput(): fc.Arbitrary<Buffer> {
  const credentials = { user: 'reader@example.com', password: 'pass word"\\é' };
  const transcript = fc
    .tuple(fc.constantFrom(...IMAP_TRANSCRIPTS), fc.array(mutation(), { maxLength: 6 }))
    .map(([t, mutations]) => sentBytes(mutate(t.steps(credentials), mutations)));
  return fc.oneof(
    { weight: 2, arbitrary: fc.uint8Array({ maxLength: 400 }).map((b) => Buffer.from(b)) },
    { weight: 3, arbitrary: tokenSoup(IMAP_TOKENS, 60) },
    { weight: 4, arbitrary: transcript },
    { weight: 1, arbitrary: randomSteps(IMAP_TOKENS).map(sentBytes) },
  );
}

/** Cuts `input` into chunks of the given sizes, used in turn (the last size repeats). */
export function chunk(input: Buffer, sizes: readonly number[]): Buffer[] {
  const out: Buffer[] = [];
  for (let offset = 0, i = 0; offset < input.length; i++) {
    const size = sizes.length === 0 ? input.length : Math.max(1, sizes[Math.min(i, sizes.length - 1)]!);
    out.push(input.subarray(offset, offset + size));
    offset += size;
  }
  return out;
}

const chunkSizes = () => fc.array(fc.integer({ min: 1, max: 300 }), { maxLength: 20 });

export function retainedBound(options: ImapLineReaderOptions): number {
  const line = options.maxLineBytes ?? 8192;
  const literal = options.maxLiteralBytes ?? 8192;
  const pending = options.maxPendingBytes ?? line + literal;
  // The buffer grows by doubling to what is live: the current command (line text, its line endings and its
  // literals) or the input held while paused, plus one slice of the chunk being parsed.
  return 2 * (pending + 2 * line + literal + Math.max(line, 1024) + 2);
}

function literalBytes(values: readonly ImapValue[]): number {
  let total = 0;
  for (const v of values) {
    if (v.type === 'literal') total += v.bytes.length;
    else if (v.type === 'list') total += literalBytes(v.value);
  }
  return total;
}

function depth(values: readonly ImapValue[]): number {
  return values.reduce((d, v) => Math.max(d, v.type === 'list' ? 1 + depth(v.value) : 0), 0);
}

function assertTag(tag: string): void {
  assert.match(tag, TAG, `bad tag ${JSON.stringify(tag)}`);
  assert.doesNotMatch(tag, TAG_EXCLUDED, `bad tag ${JSON.stringify(tag)}`);
}

/**
 * Drives a reader the way ImapSession does (resume after each command; a SASL line after AUTHENTICATE without an
 * initial response, two for LOGIN) and checks every event and the memory held after every call.
 */
export function driveReader(chunks: readonly Buffer[], options: ImapLineReaderOptions): ReaderEvent[] {
  const reader = new ImapLineReader(options);
  const maxLine = options.maxLineBytes ?? 8192;
  const maxLiteral = options.maxLiteralBytes ?? 8192;
  const bound = retainedBound(options);
  const events: ReaderEvent[] = [];
  let saslLines = 0;
  let closedAt = -1;
  const take = (batch: ReaderEvent[]) => {
    assert.ok(reader.retainedBytes <= bound, `retained ${reader.retainedBytes} > ${bound}`);
    for (const event of batch) {
      assert.equal(closedAt, -1, 'an event after a fatal error');
      checkEvent(event, maxLine, maxLiteral);
      if (event.type === 'error' && event.fatal) {
        closedAt = events.length;
        assert.equal(reader.closed, true);
        assert.equal(reader.retainedBytes, 0, 'a closed reader holds nothing');
      }
      if (event.type === 'sasl') assert.ok(saslLines > 0, 'a SASL line nobody asked for');
      events.push(event);
      if (event.type === 'command' && event.name === 'AUTHENTICATE' && event.args.length === 1) {
        saslLines = asAString(event.args[0])?.toUpperCase() === 'LOGIN' ? 2 : 1;
      } else if (event.type === 'sasl') {
        saslLines = event.line === '*' ? 0 : saslLines - 1;
      } else if (event.type === 'command') {
        saslLines = 0;
      }
      if (saslLines > 0 && (event.type === 'command' || event.type === 'sasl')) reader.expectSaslLine();
    }
  };
  for (const piece of chunks) {
    take(reader.push(piece));
    while (reader.paused) take(reader.resume());
  }
  return events;
}

function checkEvent(event: ReaderEvent, maxLine: number, maxLiteral: number): void {
  switch (event.type) {
    case 'command':
      assertTag(event.tag);
      assert.match(event.name, /^[\x21-\x7e]+$/);
      assert.equal(event.name, event.name.toUpperCase());
      assert.ok(literalBytes(event.args) <= maxLiteral, 'literals over maxLiteralBytes');
      assert.ok(depth(event.args) <= 33, 'lists nested past the cap');
      assert.equal(event.raw.at(-1), 0x0a, 'raw ends with the line end');
      assert.ok(event.raw.length <= 2 * maxLine + maxLiteral + 2, `raw ${event.raw.length} octets`);
      return;
    case 'continue-literal':
      assertTag(event.tag);
      assert.ok(event.size >= 0 && event.size <= maxLiteral);
      return;
    case 'sasl':
      assert.ok(!event.line.includes('\n'));
      assert.ok(event.line.length <= maxLine);
      return;
    case 'error':
      if (event.tag !== null) assertTag(event.tag);
      assert.ok(['syntax', 'line-too-long', 'literal-too-large', 'pending-overflow'].includes(event.code));
      if (event.code === 'syntax') assert.equal(event.fatal, false);
      if (event.code === 'line-too-long' || event.code === 'pending-overflow') assert.equal(event.fatal, true);
      assert.ok(event.reason.length > 0);
  }
}

/** What a generated command argument looks like on the wire, and what the parser must give back. */
type Arg = { wire: string; value: ImapValue };

const atomChar = fc.constantFrom(...'abcXYZ019.-_:@!#$&\'+,/;<=>?^`|~['.split(''));
const quotedChar = fc.constantFrom(...'ab Z9 ()[]{}%*@é\\"'.split(''));
function argument(): fc.Arbitrary<Arg> {
  const { arg } = fc.letrec<{ arg: Arg; list: Arg }>((tie) => ({
    arg: fc.oneof(
      { depthSize: 'small', withCrossShrink: true },
      fc.string({ unit: atomChar, minLength: 1, maxLength: 12 }).filter((s) => s.toUpperCase() !== 'NIL' && !/^~?\{/.test(s)).map((s) => ({ wire: s, value: { type: 'atom', value: s } as ImapValue })),
      fc.string({ unit: quotedChar, maxLength: 12 }).map((s) => {
        const bytes = Buffer.from(s, 'utf8');
        return { wire: `"${s.replace(/[\\"]/g, (m) => `\\${m}`)}"`, value: { type: 'quoted', value: s, bytes } as ImapValue };
      }),
      fc.tuple(fc.string({ unit: fc.constantFrom('a', 'Z', ' ', '\r', '\n', 'é', '{', '}', '"', '\\', ')'), maxLength: 20 }), fc.boolean()).map(([s, nonSync]) => {
        const bytes = Buffer.from(s, 'utf8');
        return { wire: `{${bytes.length}${nonSync ? '+' : ''}}\r\n${s}`, value: { type: 'literal', value: bytes.toString('utf8'), bytes } as ImapValue };
      }),
      tie('list'),
    ),
    list: fc.array(tie('arg'), { maxLength: 4 }).map((items) => ({
      wire: `(${items.map((i) => i.wire).join(' ')})`,
      value: { type: 'list', value: items.map((i) => i.value) } as ImapValue,
    })),
  }));
  return arg;
}

/** A literal ends its line: an argument after it starts right after the CRLF and its octets. */
const joinArgs = (args: readonly Arg[]) => args.map((a) => a.wire).join(' ');

export const imapParserProperties: FuzzProperty[] = [
  {
    name: 'imap reader: any bytes, any chunking, any limits: no throw, well-formed events, bounded memory',
    numRuns: 1500,
    property: fc.property(readerInput(), chunkSizes(), fc.constantFrom(...LIMITS), (input, sizes, limits) => {
      driveReader(chunk(input, sizes), limits);
    }),
  },
  {
    name: 'imap reader: the events do not depend on how the input was chunked',
    numRuns: 800,
    property: fc.property(readerInput(), chunkSizes(), fc.constantFrom(...LIMITS), (whole, sizes, limits) => {
      // Input held while paused may overflow maxPendingBytes in one chunk and not in another: only below it.
      const input = whole.subarray(0, limits.maxPendingBytes);
      const once = driveReader([input], limits);
      assert.deepStrictEqual(driveReader(chunk(input, sizes), limits), once);
      assert.deepStrictEqual(driveReader(chunk(input, [1]), limits), once);
    }),
  },
  {
    name: 'imap parser: generated valid commands round-trip, and their raw octets are exactly the input',
    numRuns: 800,
    property: fc.property(
      fc.array(fc.tuple(fc.string({ unit: atomChar, minLength: 1, maxLength: 6 }).filter((t) => !t.includes('+')), fc.constantFrom('NOOP', 'LOGIN', 'ID', 'SEARCH', 'X-FUZZ'), fc.array(argument(), { maxLength: 5 })), {
        minLength: 1,
        maxLength: 4,
      }),
      chunkSizes(),
      (commands, sizes) => {
        const wires = commands.map(([tag, name, args]) => `${tag} ${name}${args.length > 0 ? ' ' : ''}${joinArgs(args)}\r\n`);
        const input = Buffer.from(wires.join(''), 'utf8');
        const limits = { maxLineBytes: 8192, maxLiteralBytes: 8192, maxPendingBytes: 256 * 1024 };
        const events = driveReader(chunk(input, sizes), limits).filter((e) => e.type !== 'continue-literal');
        assert.equal(events.length, commands.length, JSON.stringify(events.map((e) => e.type)));
        events.forEach((event, i) => {
          const [tag, name, args] = commands[i]!;
          assert.equal(event.type, 'command');
          if (event.type !== 'command') return;
          assert.equal(event.tag, tag);
          assert.equal(event.name, name);
          assert.deepStrictEqual(event.args, args.map((a) => a.value));
          assert.equal(event.raw.toString('utf8'), wires[i]);
        });
      },
    ),
  },
];

export async function openImapParserTarget(): Promise<FuzzTarget> {
  return { properties: imapParserProperties, close: async () => {} };
}
