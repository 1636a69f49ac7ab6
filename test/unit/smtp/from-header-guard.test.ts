import assert from 'node:assert/strict';
import { Readable, Writable } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import { describe, it } from 'node:test';
import { checkFromHeader, FromHeaderGuard, fromAddresses, MAX_FROM_HEADER_SECTION_BYTES } from '../../../src/smtp/from-header-guard.js';

const allowed = (a: string) => a === 'alice@example.com' || a === 'scans@example.com';

/** Streams `chunks` through a guard; what came out, and the error if it refused. */
async function run(chunks: string[]): Promise<{ out: string; error: Error | null; guard: FromHeaderGuard }> {
  const guard = new FromHeaderGuard(allowed);
  let out = '';
  const sink = new Writable({ write: (chunk: Buffer, _e, cb) => ((out += chunk.toString('utf8')), cb()) });
  let error: Error | null = null;
  await pipeline(Readable.from(chunks.map((c) => Buffer.from(c))), guard, sink).catch((e: Error) => (error = e));
  return { out, error, guard };
}

describe('fromAddresses (RFC 5322 mailbox-list)', () => {
  it('reads name-addr, bare addr-spec and lists; not an address inside a quoted name or a comment', () => {
    assert.deepEqual(fromAddresses(' Alice <Alice@Example.com>'), ['alice@example.com']);
    assert.deepEqual(fromAddresses(' alice@example.com'), ['alice@example.com']);
    assert.deepEqual(fromAddresses(' "bob@example.com" <alice@example.com>'), ['alice@example.com']);
    assert.deepEqual(fromAddresses(' alice@example.com (bob@example.com)'), ['alice@example.com']);
    assert.deepEqual(fromAddresses(' Alice <alice@example.com>, bob@example.com'), ['alice@example.com', 'bob@example.com']);
    assert.deepEqual(fromAddresses(' =?utf-8?q?Al=C3=AFce?= <alice@example.com>'), ['alice@example.com']);
  });
});

describe('checkFromHeader', () => {
  it('allows the mailbox and allowed senders, folded or not; refuses others, two From fields, an empty one', () => {
    assert.equal(checkFromHeader('Subject: x\r\nFrom: Alice <alice@example.com>', allowed), null);
    assert.equal(checkFromHeader('From:\r\n Scanner <scans@example.com>\r\nTo: x@example.org', allowed), null);
    assert.equal(checkFromHeader('Subject: no from', allowed), null);
    assert.match(checkFromHeader('From: Bob <bob@example.com>', allowed)!, /bob@example\.com not allowed/);
    assert.match(checkFromHeader('From: alice@example.com\r\nfrom: bob@example.com', allowed)!, /2 From headers/);
    assert.match(checkFromHeader('From: undisclosed', allowed)!, /no address/);
    assert.match(checkFromHeader('From: alice@example.com, bob@example.com', allowed)!, /bob@example\.com/);
  });
});

describe('FromHeaderGuard', () => {
  it('passes an allowed message through unchanged, header split across chunks', async () => {
    const message = 'Subject: hi\r\nFr' + 'om: alice@exa' + 'mple.com\r\n\r\nbody\r\nFrom: bob@example.com\r\n';
    const { out, error } = await run(['Subject: hi\r\nFr', 'om: alice@exa', 'mple.com\r', '\n\r\nbody\r\nFrom: bob@example.com\r\n']);
    assert.equal(error, null);
    assert.equal(out, message, 'a From line in the body is not the header');
  });

  it('fails the stream before its end on a refused From, with the 550 5.7.1 refusal and the reason', async () => {
    const { error, guard } = await run(['From: Bob <bob@example.com>\r\n', '\r\nbody\r\n']);
    assert.match(error!.message, /From header refused/);
    assert.equal(guard.refusal?.code, 550);
    assert.match(guard.refusal!.text, /^5\.7\.1 From header/);
    assert.match(guard.reason!, /bob@example\.com/);
  });

  it('decides at the end of a message that is all header', async () => {
    assert.notEqual((await run(['From: bob@example.com\r\n'])).error, null);
    assert.equal((await run(['From: alice@example.com\r\n'])).error, null);
  });

  it('refuses a header section over the cap, without holding more than it', async () => {
    const line = `X-Filler: ${'a'.repeat(1000)}\r\n`;
    const { error, guard } = await run([`From: alice@example.com\r\n`, ...Array.from({ length: Math.ceil(MAX_FROM_HEADER_SECTION_BYTES / line.length) + 1 }, () => line), '\r\nbody']);
    assert.notEqual(error, null);
    assert.match(guard.reason!, /header section over/);
  });
});
