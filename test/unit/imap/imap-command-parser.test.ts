import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import {
  asAString,
  extractTag,
  ImapCommandParser,
  parseCommand,
  trailingLiteral,
  type ImapValue,
} from '../../../src/imap/imap-command-parser.js';

const atom = (value: string): ImapValue => ({ type: 'atom', value });
const nil = (value = 'NIL'): ImapValue => ({ type: 'nil', value });
const quoted = (value: string, bytes = Buffer.from(value)): ImapValue => ({ type: 'quoted', value, bytes });
const literal = (value: string, bytes = Buffer.from(value)): ImapValue => ({ type: 'literal', value, bytes });
const list = (...value: ImapValue[]): ImapValue => ({ type: 'list', value });

/** One line, no literals. */
const parseLine = (line: string | Buffer) => parseCommand([Buffer.from(line)]);

describe('parseCommand: valid commands', () => {
  const cases: [line: string, tag: string, name: string, args: ImapValue[]][] = [
    // RFC 3501 §8 sample and §6.2.3 example
    ['a001 login mrc secret', 'a001', 'LOGIN', [atom('mrc'), atom('secret')]],
    ['A001 LOGIN SMITH SESAME', 'A001', 'LOGIN', [atom('SMITH'), atom('SESAME')]],
    ['abcd CAPABILITY', 'abcd', 'CAPABILITY', []],
    ['a002 noop', 'a002', 'NOOP', []],
    ['A023 LOGOUT', 'A023', 'LOGOUT', []],
    ['a002 STARTTLS', 'a002', 'STARTTLS', []],
    // quoted strings, RFC 3501 §4.3 escapes
    ['a LOGIN "user@x" "p\\"ass"', 'a', 'LOGIN', [quoted('user@x'), quoted('p"ass')]],
    ['a LOGIN "user@x" "back\\\\slash"', 'a', 'LOGIN', [quoted('user@x'), quoted('back\\slash')]],
    ['a LOGIN "" ""', 'a', 'LOGIN', [quoted(''), quoted('')]],
    ['a LOGIN "with space" "tab\there"', 'a', 'LOGIN', [quoted('with space'), quoted('tab\there')]],
    ['a LOGIN "jörg@example.de" "pässwörd"', 'a', 'LOGIN', [quoted('jörg@example.de'), quoted('pässwörd')]],
    // RFC 4959 SASL-IR; "=" is the empty initial response
    ['a AUTHENTICATE PLAIN AHVzZXJAZXhhbXBsZS5jb20Ac2VjcmV0', 'a', 'AUTHENTICATE', [atom('PLAIN'), atom('AHVzZXJAZXhhbXBsZS5jb20Ac2VjcmV0')]],
    ['a AUTHENTICATE PLAIN =', 'a', 'AUTHENTICATE', [atom('PLAIN'), atom('=')]],
    ['a authenticate login', 'a', 'AUTHENTICATE', [atom('login')]],
    // RFC 2971 ID
    [
      'a ID ("name" "Thunderbird" "version" "115.0")',
      'a',
      'ID',
      [list(quoted('name'), quoted('Thunderbird'), quoted('version'), quoted('115.0'))],
    ],
    ['a ID NIL', 'a', 'ID', [nil()]],
    ['a id nil', 'a', 'ID', [nil('nil')]],
    ['a ID ()', 'a', 'ID', [list()]],
    ['a ID ("name" NIL)', 'a', 'ID', [list(quoted('name'), nil())]],
    // commands the session refuses still parse, so that it answers "BAD unknown command" with the tag
    ['c SELECT INBOX', 'c', 'SELECT', [atom('INBOX')]],
    ['a LIST "" *', 'a', 'LIST', [quoted(''), atom('*')]],
    ['a LIST "" %/%', 'a', 'LIST', [quoted(''), atom('%/%')]],
    ['a UID FETCH 1:* (FLAGS BODY.PEEK[HEADER.FIELDS (FROM TO)]<0.100>)', 'a', 'UID', [
      atom('FETCH'),
      atom('1:*'),
      list(atom('FLAGS'), atom('BODY.PEEK[HEADER.FIELDS (FROM TO)]<0.100>')),
    ]],
    ['a STORE 1 +FLAGS (\\Seen \\Deleted)', 'a', 'STORE', [atom('1'), atom('+FLAGS'), list(atom('\\Seen'), atom('\\Deleted'))]],
    ['a SEARCH OR (FROM x) (NOT (TO y))', 'a', 'SEARCH', [atom('OR'), list(atom('FROM'), atom('x')), list(atom('NOT'), list(atom('TO'), atom('y')))]],
    ['a SELECT [Gmail]/Sent', 'a', 'SELECT', [atom('[Gmail]/Sent')]],
    // tags: any ASTRING-CHAR but "+", so "]" is allowed
    ['A.1]x NOOP', 'A.1]x', 'NOOP', []],
    // tolerated: runs of SP, trailing SP
    ['a  LOGIN  u   p  ', 'a', 'LOGIN', [atom('u'), atom('p')]],
  ];
  for (const [line, tag, name, args] of cases) {
    it(line, () => assert.deepEqual(parseLine(line), { ok: true, command: { tag, name, args } }));
  }

  it('keeps 8-bit octets that are not UTF-8 exactly in bytes', () => {
    const password = Buffer.from('p\xe4ss', 'latin1');
    const result = parseLine(Buffer.concat([Buffer.from('a LOGIN u "'), password, Buffer.from('"')]));
    assert.ok(result.ok);
    const arg = result.command.args[1];
    assert.equal(arg?.type, 'quoted');
    assert.deepEqual(arg.type === 'quoted' && arg.bytes, password);
  });
});

describe('parseCommand: literals', () => {
  const lines = (...texts: string[]) => texts.map((t) => Buffer.from(t));
  const octets = (...texts: string[]) => texts.map((t) => Buffer.from(t));

  it('LOGIN with two synchronizing literals (Thunderbird, Outlook)', () => {
    assert.deepEqual(parseCommand(lines('1 LOGIN {16}', ' {15}', ''), octets('user@example.com', 'pass word "\\ }{')), {
      ok: true,
      command: { tag: '1', name: 'LOGIN', args: [literal('user@example.com'), literal('pass word "\\ }{')] },
    });
  });

  it('non-synchronizing, empty and binary literals, inside a list', () => {
    assert.deepEqual(parseCommand(lines('a ID ({4+}', ' {0}', ' ~{3}', ')'), octets('name', '', 'a\0b')), {
      ok: true,
      command: { tag: 'a', name: 'ID', args: [list(literal('name'), literal(''), literal('a\0b'))] },
    });
  });

  it('an incremental parser announces the literal and its kind', () => {
    const parser = new ImapCommandParser();
    assert.deepEqual(parser.line(Buffer.from('x LOGIN {5+}')), { kind: 'literal', size: 5, sync: false });
    assert.equal(parser.tag, 'x');
    assert.equal(parser.literal(Buffer.from('user1')), null);
    assert.deepEqual(parser.line(Buffer.from(' {3}')), { kind: 'literal', size: 3, sync: true });
    assert.equal(parser.literal(Buffer.from('pw!')), null);
    assert.deepEqual(parser.line(Buffer.from('')), {
      kind: 'command',
      command: { tag: 'x', name: 'LOGIN', args: [literal('user1'), literal('pw!')] },
    });
  });

  it('refuses NUL in a (non-binary) literal: RFC 3501 CHAR8', () => {
    assert.deepEqual(parseCommand(lines('a LOGIN u {3}', ''), octets('a\0b')), { ok: false, tag: 'a', reason: 'NUL octet in a literal' });
  });

  it('refuses text right after a literal', () => {
    const result = parseCommand(lines('a LOGIN {1}', 'x'), octets('u'));
    assert.deepEqual(result, { ok: false, tag: 'a', reason: 'expected SP between arguments' });
  });
});

describe('parseCommand: syntax errors', () => {
  const cases: [line: string, tag: string | null, reason: string][] = [
    ['', null, 'empty command line'],
    ['   ', null, 'invalid tag'],
    ['* LOGIN u p', null, 'invalid tag'],
    ['+ LOGIN u p', null, 'invalid tag'],
    ['a+b NOOP', null, 'invalid tag'],
    ['a(b NOOP', null, 'invalid tag'],
    ['ab\x01 NOOP', null, 'invalid tag'],
    ['t\xe9g NOOP', null, 'invalid tag'],
    ['a', 'a', 'missing command name'],
    ['a ', 'a', 'missing command name'],
    ['a "LOGIN"', 'a', 'missing command name'],
    ['a LOGIN(x)', 'a', 'invalid command name'],
    ['a LOG*IN', 'a', 'invalid command name'],
    ['a LOGIN "unterminated', 'a', 'unterminated quoted string'],
    ['a LOGIN "u" "p\\x"', 'a', 'invalid escape in quoted string'],
    ['a LOGIN "u" "p\\', 'a', 'invalid escape in quoted string'],
    ['a LOGIN "u\rx" p', 'a', 'invalid octet in quoted string'],
    ['a LOGIN "u\0x" p', 'a', 'invalid octet in quoted string'],
    ['a LOGIN "u""p"', 'a', 'expected SP between arguments'],
    ['a LOGIN u"p"', 'a', 'expected SP between arguments'],
    ['a LOGIN u{5}', 'a', 'expected SP between arguments'],
    ['a LOGIN {5} p', 'a', 'literal announcement must end the line'],
    ['a LOGIN {x}', 'a', 'literal announcement must end the line'],
    ['a LOGIN {}', 'a', 'literal announcement must end the line'],
    ['a LOGIN {-1}', 'a', 'literal announcement must end the line'],
    ['a LOGIN {99999999999}', 'a', 'literal announcement must end the line'],
    ['a LOGIN {4294967296}', 'a', 'literal size out of range'],
    ['a ID ("name" "x"', 'a', 'unclosed "("'],
    ['a ID "name")', 'a', 'unbalanced ")"'],
    ['a ID (x)(y)', 'a', 'expected SP between arguments'],
    ['a LOGIN u p\x7f', 'a', 'invalid octet in arguments'],
    ['a LOGIN u\tp', 'a', 'invalid octet in arguments'],
    ['a LOGIN \xfcser p', 'a', 'invalid octet in arguments'],
    ['a FETCH 1 BODY[HEADER', 'a', 'unterminated section'],
    [`a ID ${'('.repeat(40)}`, 'a', 'lists nested too deep'],
  ];
  for (const [line, tag, reason] of cases) {
    it(JSON.stringify(line), () => assert.deepEqual(parseLine(Buffer.from(line, 'latin1')), { ok: false, tag, reason }));
  }
});

describe('helpers', () => {
  it('asAString takes atoms of ASTRING-CHARs, NIL as its text, quoted strings and literals', () => {
    assert.equal(asAString(atom('user]x')), 'user]x');
    assert.equal(asAString(nil('nil')), 'nil');
    assert.equal(asAString(quoted('p"ss')), 'p"ss');
    assert.equal(asAString(literal('pw')), 'pw');
    assert.equal(asAString(atom('\\Seen')), null);
    assert.equal(asAString(atom('1:*')), null);
    assert.equal(asAString(atom('50%')), null);
    assert.equal(asAString(list()), null);
    assert.equal(asAString(undefined), null);
  });

  it('trailingLiteral reads the announcement that ends a line, even of a line the parser rejected', () => {
    assert.deepEqual(trailingLiteral(Buffer.from('a LOGIN {12}')), { size: 12, sync: true, binary: false });
    assert.deepEqual(trailingLiteral(Buffer.from('a APPEND x ~{7+}')), { size: 7, sync: false, binary: true });
    assert.deepEqual(trailingLiteral(Buffer.from('a% {3+}')), { size: 3, sync: false, binary: false });
    assert.equal(trailingLiteral(Buffer.from('a LOGIN {12} x')), null);
    assert.equal(trailingLiteral(Buffer.from('a LOGIN u p')), null);
  });

  it('extractTag needs a valid tag followed by SP', () => {
    assert.equal(extractTag(Buffer.from('a1 LOGIN')), 'a1');
    assert.equal(extractTag(Buffer.from('a1')), null);
    assert.equal(extractTag(Buffer.from('* LOGIN')), null);
  });
});
