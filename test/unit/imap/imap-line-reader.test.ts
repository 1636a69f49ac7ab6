import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { describe, it } from 'node:test';
import { asAString, type ImapValue } from '../../../src/imap/imap-command-parser.js';
import { ImapLineReader, type ImapLineReaderOptions, type ReaderEvent } from '../../../src/imap/imap-line-reader.js';

const atom = (value: string): ImapValue => ({ type: 'atom', value });
const quoted = (value: string): ImapValue => ({ type: 'quoted', value, bytes: Buffer.from(value) });
const literal = (value: string): ImapValue => ({ type: 'literal', value, bytes: Buffer.from(value) });
const list = (...value: ImapValue[]): ImapValue => ({ type: 'list', value });

const command = (raw: string, tag: string, name: string, args: ImapValue[]): ReaderEvent => ({ type: 'command', tag, name, args, raw: Buffer.from(raw) });
const more = (tag: string, size: number): ReaderEvent => ({ type: 'continue-literal', tag, size });
const sasl = (line: string): ReaderEvent => ({ type: 'sasl', line });
const bad = (tag: string | null, reason: string): ReaderEvent => ({ type: 'error', code: 'syntax', tag, reason, fatal: false });
const tooBig = (tag: string | null, fatal: boolean): ReaderEvent => ({
  type: 'error',
  code: 'literal-too-large',
  tag,
  reason: fatal ? 'non-synchronizing literal too large' : 'literal too large',
  fatal,
});
const tooLong = (tag: string | null): ReaderEvent => ({ type: 'error', code: 'line-too-long', tag, reason: 'command line too long', fatal: true });

/**
 * A stand-in for the session: resumes after every command, and expects SASL lines after AUTHENTICATE without an
 * initial response (PLAIN: one line; LOGIN: user, then password; "*" cancels).
 */
function runSession(chunks: Buffer[], options?: ImapLineReaderOptions): { events: ReaderEvent[]; reader: ImapLineReader } {
  const reader = new ImapLineReader(options);
  const events: ReaderEvent[] = [];
  let saslLines = 0;
  const take = (batch: ReaderEvent[]) => {
    for (const event of batch) {
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
  for (const chunk of chunks) {
    take(reader.push(chunk));
    while (reader.paused) take(reader.resume());
  }
  return { events, reader };
}

/** Every way the tests cut the input: whole, byte by byte, at every single boundary, and some random three-way cuts. */
function chunkings(input: Buffer): [string, Buffer[]][] {
  const out: [string, Buffer[]][] = [['whole', [input]]];
  out.push(['byte by byte', [...input].map((b) => Buffer.from([b]))]);
  for (let i = 1; i < input.length; i++) out.push([`cut at ${i}`, [input.subarray(0, i), input.subarray(i)]]);
  for (let n = 0; n < 20 && input.length > 2; n++) {
    const [a, b] = [1 + Math.floor(Math.random() * (input.length - 1)), 1 + Math.floor(Math.random() * (input.length - 1))].sort((x, y) => x - y) as [number, number];
    out.push([`cut at ${a} and ${b}`, [input.subarray(0, a), input.subarray(a, b), input.subarray(b)]]);
  }
  return out;
}

/** Small limits, so that the limit cases stay short enough to cut at every boundary. */
const SMALL: ImapLineReaderOptions = { maxLineBytes: 40, maxLiteralBytes: 24, maxNonSyncLiteralBytes: 16 };
const B64 = Buffer.from('\0user@example.com\0secret').toString('base64');

const transcripts: [name: string, input: string, expected: ReaderEvent[], options?: ImapLineReaderOptions][] = [
  ['RFC 3501 §8 sample, lower case', 'a001 login mrc secret\r\n', [command('a001 login mrc secret\r\n', 'a001', 'LOGIN', [atom('mrc'), atom('secret')])]],
  ['RFC 3501 §6.2.3 example', 'A001 LOGIN SMITH SESAME\r\n', [command('A001 LOGIN SMITH SESAME\r\n', 'A001', 'LOGIN', [atom('SMITH'), atom('SESAME')])]],
  ['quoted, with escapes', 'a LOGIN "user@x" "p\\"ass"\r\n', [command('a LOGIN "user@x" "p\\"ass"\r\n', 'a', 'LOGIN', [quoted('user@x'), quoted('p"ass')])]],
  [
    'pipelined in one chunk',
    'a CAPABILITY\r\nb LOGIN u p\r\nc SELECT INBOX\r\n',
    [
      command('a CAPABILITY\r\n', 'a', 'CAPABILITY', []),
      command('b LOGIN u p\r\n', 'b', 'LOGIN', [atom('u'), atom('p')]),
      command('c SELECT INBOX\r\n', 'c', 'SELECT', [atom('INBOX')]),
    ],
  ],
  [
    'synchronizing literals (Thunderbird, Outlook)',
    '1 LOGIN {16}\r\nuser@example.com {11}\r\npass "word"\r\n',
    [more('1', 16), more('1', 11), command('1 LOGIN {16}\r\nuser@example.com {11}\r\npass "word"\r\n', '1', 'LOGIN', [literal('user@example.com'), literal('pass "word"')])],
    { maxLiteralBytes: 27 },
  ],
  [
    'non-synchronizing literals: no continuation',
    '2 LOGIN {16+}\r\nuser@example.com {2+}\r\npw\r\n',
    [command('2 LOGIN {16+}\r\nuser@example.com {2+}\r\npw\r\n', '2', 'LOGIN', [literal('user@example.com'), literal('pw')])],
  ],
  [
    'literal octets are not lines: CRLF and braces inside',
    'a LOGIN {4}\r\n\r\n\r\n {5}\r\n{1}\r\n\r\n',
    [more('a', 4), more('a', 5), command('a LOGIN {4}\r\n\r\n\r\n {5}\r\n{1}\r\n\r\n', 'a', 'LOGIN', [literal('\r\n\r\n'), literal('{1}\r\n')])],
  ],
  ['empty literal', 'a LOGIN {0}\r\n {0+}\r\n\r\n', [more('a', 0), command('a LOGIN {0}\r\n {0+}\r\n\r\n', 'a', 'LOGIN', [literal(''), literal('')])]],
  ['AUTHENTICATE PLAIN with SASL-IR (RFC 4959)', `a AUTHENTICATE PLAIN ${B64}\r\n`, [command(`a AUTHENTICATE PLAIN ${B64}\r\n`, 'a', 'AUTHENTICATE', [atom('PLAIN'), atom(B64)])], {}],
  [
    'AUTHENTICATE PLAIN, then the response line',
    `a AUTHENTICATE PLAIN\r\n${B64}\r\nb NOOP\r\n`,
    [command('a AUTHENTICATE PLAIN\r\n', 'a', 'AUTHENTICATE', [atom('PLAIN')]), sasl(B64), command('b NOOP\r\n', 'b', 'NOOP', [])],
  ],
  [
    'AUTHENTICATE cancelled with "*"',
    'a AUTHENTICATE PLAIN\r\n*\r\nb NOOP\r\n',
    [command('a AUTHENTICATE PLAIN\r\n', 'a', 'AUTHENTICATE', [atom('PLAIN')]), sasl('*'), command('b NOOP\r\n', 'b', 'NOOP', [])],
  ],
  [
    'AUTHENTICATE LOGIN: two lines, the empty one too',
    'a authenticate login\r\ndXNlcg==\r\n\r\n',
    [command('a authenticate login\r\n', 'a', 'AUTHENTICATE', [atom('login')]), sasl('dXNlcg=='), sasl('')],
  ],
  [
    'ID with a list (RFC 2971)',
    'a ID ("name" "Thunderbird" "version" "115.0")\r\n',
    [command('a ID ("name" "Thunderbird" "version" "115.0")\r\n', 'a', 'ID', [list(quoted('name'), quoted('Thunderbird'), quoted('version'), quoted('115.0'))])],
    {},
  ],
  ['ID NIL', 'a ID NIL\r\n', [command('a ID NIL\r\n', 'a', 'ID', [{ type: 'nil', value: 'NIL' }])]],
  [
    'bare LF line endings',
    'a NOOP\nb LOGIN {1}\nx y\n',
    [command('a NOOP\n', 'a', 'NOOP', []), more('b', 1), command('b LOGIN {1}\nx y\n', 'b', 'LOGIN', [literal('x'), atom('y')])],
  ],
  ['syntax error, then the next command', 'a LOGIN "x\r\nb NOOP\r\n', [bad('a', 'unterminated quoted string'), command('b NOOP\r\n', 'b', 'NOOP', [])]],
  ['empty line', '\r\nb NOOP\r\n', [bad(null, 'empty command line'), command('b NOOP\r\n', 'b', 'NOOP', [])]],
  ['garbage line', '\x00\xff\x16\x03\x01\r\nb NOOP\r\n', [bad(null, 'invalid tag'), command('b NOOP\r\n', 'b', 'NOOP', [])]],
  [
    'rejected line with a non-synchronizing literal: its octets are skipped, not read as a command',
    'a BOGUS( {12+}\r\nz LOGOUT\r\n\r\n tail {3+}\r\nabc\r\nb NOOP\r\n',
    [bad('a', 'invalid command name'), command('b NOOP\r\n', 'b', 'NOOP', [])],
  ],
  [
    'NUL in a literal: the rest of the command is dropped',
    'a LOGIN {3}\r\na\0b {2+}\r\nxx rest\r\nb NOOP\r\n',
    [more('a', 3), bad('a', 'NUL octet in a literal'), command('b NOOP\r\n', 'b', 'NOOP', [])],
  ],
  [
    'synchronizing literal too large: refused, and its octets are not awaited',
    'a LOGIN {25}\r\nb NOOP\r\n',
    [tooBig('a', false), command('b NOOP\r\n', 'b', 'NOOP', [])],
  ],
  [
    'literals of one command too large together',
    'a LOGIN {20}\r\n01234567890123456789 {5}\r\nb NOOP\r\n',
    [more('a', 20), tooBig('a', false), command('b NOOP\r\n', 'b', 'NOOP', [])],
  ],
  ['non-synchronizing literal too large: fatal', 'a LOGIN {17+}\r\n01234567890123456\r\nb NOOP\r\n', [tooBig('a', true)]],
  ['rejected line with a too large non-synchronizing literal: fatal', 'a BOGUS( {17+}\r\n', [bad('a', 'invalid command name'), tooBig(null, true)]],
  ['line too long: fatal, with the tag', `a LOGIN ${'x'.repeat(33)}\r\nb NOOP\r\n`, [tooLong('a')]],
  ['line too long without a tag', `${'x'.repeat(41)}\r\n`, [tooLong(null)]],
  ['line too long across literals: the limit is per command', `a LOGIN {1}\r\nu ${'x'.repeat(30)}\r\n`, [more('a', 1), tooLong('a')]],
  ['a line of exactly maxLineBytes is accepted', `a LOGIN u ${'x'.repeat(30)}\r\n`, [command(`a LOGIN u ${'x'.repeat(30)}\r\n`, 'a', 'LOGIN', [atom('u'), atom('x'.repeat(30))])]],
  ['a bare CR is text: counted', `a NOOP ${'x'.repeat(33)}\r\r\n`, [tooLong('a')]],
  ['a bare CR is text: invalid', 'a NOOP x\ry\r\nb NOOP\r\n', [bad('a', 'invalid octet in arguments'), command('b NOOP\r\n', 'b', 'NOOP', [])]],
  [
    'SASL line too long: fatal, no tag',
    `a AUTHENTICATE PLAIN\r\n${'A'.repeat(41)}\r\n`,
    [command('a AUTHENTICATE PLAIN\r\n', 'a', 'AUTHENTICATE', [atom('PLAIN')]), tooLong(null)],
  ],
];

describe('ImapLineReader transcripts, at every chunking', () => {
  for (const [name, input, expected, options] of transcripts) {
    it(name, () => {
      const bytes = Buffer.from(input, 'latin1');
      for (const [how, chunks] of chunkings(bytes)) {
        assert.deepEqual(runSession(chunks, options ?? SMALL).events, expected, how);
      }
    });
  }

  it('default limits: 8192 octets of line, 8192 of literal, 4096 non-synchronizing', () => {
    const at = (input: string) => runSession([Buffer.from(input)]).events;
    assert.deepEqual(at(`a NOOP ${'x'.repeat(8192 - 7)}\r\n`).map((e) => e.type), ['command']);
    assert.deepEqual(at(`a NOOP ${'x'.repeat(8192 - 6)}\r\n`), [tooLong('a')]);
    assert.deepEqual(at('a LOGIN {8192}\r\n'), [more('a', 8192)]);
    assert.deepEqual(at('a LOGIN {8193}\r\n'), [tooBig('a', false)]);
    assert.deepEqual(at('a LOGIN {4096+}\r\n'), []);
    assert.deepEqual(at('a LOGIN {4097+}\r\n'), [tooBig('a', true)]);
  });
});

describe('ImapLineReader pause, resume and pending()', () => {
  it('pauses after each command; pending() holds exactly what follows it', () => {
    const reader = new ImapLineReader();
    const [a, ...rest] = reader.push(Buffer.from('a CAPABILITY\r\nb LOGIN u p\r\nc SELECT INBOX\r\n'));
    assert.equal(a?.type === 'command' && a.tag, 'a');
    assert.deepEqual(rest, []);
    assert.equal(reader.paused, true);
    assert.deepEqual(reader.push(Buffer.from('d NOOP\r\n')), [], 'paused: input is held, not parsed');
    const [b, ...none] = reader.resume();
    assert.equal(b?.type === 'command' && b.name, 'LOGIN');
    assert.deepEqual(none, []);
    // LOGIN succeeded: the session hands these octets to the upstream, unchanged.
    assert.equal(reader.pending().toString(), 'c SELECT INBOX\r\nd NOOP\r\n');
  });

  it('pending() keeps a partial command and its literal octets untouched', () => {
    const reader = new ImapLineReader();
    const next = 'c APPEND INBOX {10+}\r\n01234';
    assert.equal(reader.push(Buffer.from(`b LOGIN u p\r\n${next}`)).length, 1);
    assert.equal(reader.pending().toString(), next);
  });

  it('release() gives what pending() would and closes the reader, holding no buffer', () => {
    const reader = new ImapLineReader();
    const next = 'c APPEND INBOX {10+}\r\n01234';
    assert.equal(reader.push(Buffer.from(`b LOGIN u p\r\n${next}`)).length, 1);
    assert.ok(reader.retainedBytes > 0);
    assert.equal(reader.release().toString(), next);
    assert.equal(reader.closed, true);
    assert.equal(reader.retainedBytes, 0);
    assert.deepEqual(reader.push(Buffer.from('d NOOP\r\n')), []);
    assert.deepEqual(reader.resume(), []);
    assert.deepEqual(reader.pending(), Buffer.alloc(0));
  });

  it('resume() without a pause, and pending() when empty', () => {
    const reader = new ImapLineReader();
    assert.deepEqual(reader.resume(), []);
    assert.deepEqual(reader.pending(), Buffer.alloc(0));
  });

  it('expectSaslLine() in the middle of a command is a programming error', () => {
    const reader = new ImapLineReader();
    assert.deepEqual(reader.push(Buffer.from('a LOGIN {3}\r\n')), [more('a', 3)]);
    assert.throws(() => reader.expectSaslLine(), /middle of a command/);
  });

  it('too much input while paused is fatal, and the reader lets go of it', () => {
    const reader = new ImapLineReader({ maxLineBytes: 100, maxLiteralBytes: 100 });
    assert.equal(reader.push(Buffer.from('a NOOP\r\n')).length, 1);
    assert.deepEqual(reader.push(Buffer.alloc(200, 'x')), []);
    assert.deepEqual(reader.push(Buffer.alloc(1, 'x')), [{ type: 'error', code: 'pending-overflow', tag: null, reason: 'too much input while paused', fatal: true }]);
    assert.equal(reader.closed, true);
    assert.equal(reader.paused, false);
    assert.equal(reader.retainedBytes, 0);
    assert.deepEqual(reader.push(Buffer.from('b NOOP\r\n')), []);
    assert.deepEqual(reader.pending(), Buffer.alloc(0));
  });
});

describe('ImapLineReader memory stays bounded', () => {
  const MiB = 1024 * 1024;
  const bound = 4 * (8192 + 8192);

  it('megabytes without a line end: one fatal error, nothing kept', () => {
    const reader = new ImapLineReader();
    const events: ReaderEvent[] = [];
    for (let i = 0; i < 64; i++) {
      events.push(...reader.push(Buffer.alloc(64 * 1024, 'A')));
      assert.ok(reader.retainedBytes <= bound, `retained ${reader.retainedBytes}`);
    }
    assert.deepEqual(events, [tooLong(null)]);
  });

  it('megabytes of random garbage, in socket-sized and odd chunks', () => {
    for (const size of [65_536, 1_000, 7]) {
      const garbage = randomBytes(size === 7 ? MiB / 8 : 4 * MiB);
      const reader = new ImapLineReader();
      for (let offset = 0; offset < garbage.length && !reader.closed; offset += size) {
        const events = reader.push(garbage.subarray(offset, offset + size));
        while (reader.paused) events.push(...reader.resume());
        assert.ok(reader.retainedBytes <= bound, `retained ${reader.retainedBytes}`);
        for (const event of events) assert.ok(event.type === 'error' || event.type === 'command' || event.type === 'continue-literal');
      }
    }
  });

  it('megabytes in one chunk: parsed a slice at a time', () => {
    const reader = new ImapLineReader();
    const events = reader.push(Buffer.from('a NOOP\r\n'.repeat(MiB / 8)));
    assert.equal(events.length, 2);
    assert.equal(events[1]?.type === 'error' && events[1].code, 'pending-overflow');
    assert.equal(reader.retainedBytes, 0);
  });

  it('a command of many empty literals ends at maxLineBytes', () => {
    const reader = new ImapLineReader();
    const events = reader.push(Buffer.from(`a X ${' {0+}\r\n'.repeat(MiB / 7)}`));
    assert.deepEqual(events, [tooLong('a')]);
  });

  it('skipped literals of rejected commands are dropped as they pass', () => {
    const reader = new ImapLineReader();
    const events: ReaderEvent[] = [];
    for (let i = 0; i < 256; i++) {
      events.push(...reader.push(Buffer.from(`a X( {4096+}\r\n${'x'.repeat(4096)}\r\n`)));
      assert.ok(reader.retainedBytes <= bound);
    }
    events.push(...reader.push(Buffer.from('b NOOP\r\n')));
    assert.equal(events.length, 257);
    assert.equal(events.at(-1)?.type, 'command');
  });
});
