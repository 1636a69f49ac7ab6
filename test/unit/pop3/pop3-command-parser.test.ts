import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { decodeSaslPlain, parsePop3Command } from '../../../src/pop3/pop3-command-parser.js';
import { Pop3LineReader } from '../../../src/pop3/pop3-line-reader.js';

describe('parsePop3Command', () => {
  it('upper-cases the keyword, splits arguments, and keeps PASS\'s text whole', () => {
    assert.deepEqual(parsePop3Command('user Scanner@Example.com'), { name: 'USER', args: ['Scanner@Example.com'], rest: 'Scanner@Example.com' });
    assert.deepEqual(parsePop3Command('PASS abcd efgh  ijkl'), { name: 'PASS', args: ['abcd', 'efgh', 'ijkl'], rest: 'abcd efgh  ijkl' });
    assert.deepEqual(parsePop3Command('CAPA'), { name: 'CAPA', args: [], rest: '' });
    assert.deepEqual(parsePop3Command('AUTH PLAIN AGEAYg=='), { name: 'AUTH', args: ['PLAIN', 'AGEAYg=='], rest: 'PLAIN AGEAYg==' });
  });

  it('refuses an empty line and keywords that are not 3-4 letters', () => {
    for (const line of ['', ' USER x', 'AUTHENTICATE PLAIN', 'US', 'U5ER x']) assert.equal(parsePop3Command(line), null, line);
  });
});

describe('decodeSaslPlain', () => {
  const b64 = (s: string) => Buffer.from(s).toString('base64');
  it('reads authzid, authcid and password; `*` cancels; anything else is null', () => {
    assert.deepEqual(decodeSaslPlain(b64('\0u@x\0pass word')), { authzid: '', authcid: 'u@x', password: 'pass word' });
    assert.deepEqual(decodeSaslPlain(b64('a@x\0u@x\0p')), { authzid: 'a@x', authcid: 'u@x', password: 'p' });
    assert.equal(decodeSaslPlain('*'), null);
    assert.equal(decodeSaslPlain('='), null);
    assert.equal(decodeSaslPlain('not base64!'), null);
    assert.equal(decodeSaslPlain(b64('no nul at all')), null);
  });
});

describe('Pop3LineReader', () => {
  it('gives lines across chunks (CRLF or LF), says too-long past the limit, and releases the rest as sent', () => {
    const reader = new Pop3LineReader(16);
    reader.push(Buffer.from('CA'));
    assert.equal(reader.next(), null);
    reader.push(Buffer.from('PA\r\nNOOP\nSTAT\r\nLIST'));
    assert.deepEqual(reader.next(), { type: 'line', line: 'CAPA' });
    assert.deepEqual(reader.next(), { type: 'line', line: 'NOOP' });
    assert.equal(reader.release().toString(), 'STAT\r\nLIST');
    assert.equal(reader.next(), null);
    reader.push(Buffer.alloc(17, 'x'));
    assert.deepEqual(reader.next(), { type: 'too-long' });
  });
});
