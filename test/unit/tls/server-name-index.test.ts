import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { ServerNameIndex } from '../../../src/tls/server-name-index.js';

describe('ServerNameIndex: which certificate a client asking for a name gets', () => {
  const index = new ServerNameIndex([
    ['mail.example.com'],
    ['imap.example.org', 'smtp.example.org'],
    ['*.example.net'],
    ['a.example.net', 'MAIL.example.com'],
    ['f*.example.io', 'x.*.example.io', '*'],
  ]);

  it('matches an exact name without case or trailing dot', () => {
    assert.equal(index.lookup('smtp.example.org'), 1);
    assert.equal(index.lookup('IMAP.Example.ORG'), 1);
    assert.equal(index.lookup('mail.example.com.'), 0);
  });

  it('lets the first certificate listing a name win', () => {
    assert.equal(index.lookup('mail.example.com'), 0);
  });

  it('matches a wildcard for exactly one leftmost label', () => {
    assert.equal(index.lookup('b.example.net'), 2);
    assert.equal(index.lookup('b.c.example.net'), undefined);
    assert.equal(index.lookup('example.net'), undefined);
  });

  it('prefers an exact name over a wildcard', () => {
    assert.equal(index.lookup('a.example.net'), 3);
  });

  it('never matches partial or inner wildcards', () => {
    assert.equal(index.lookup('foo.example.io'), undefined);
    assert.equal(index.lookup('x.y.example.io'), undefined);
    assert.equal(index.lookup('anything'), undefined);
  });

  it('has no match without a name', () => {
    assert.equal(index.lookup(undefined), undefined);
    assert.equal(index.lookup(''), undefined);
  });
});
