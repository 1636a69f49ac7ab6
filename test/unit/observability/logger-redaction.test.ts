import assert from 'node:assert/strict';
import { Writable } from 'node:stream';
import { describe, it } from 'node:test';
import { createLogger } from '../../../src/observability/logger.js';

function capture(): { lines: () => Record<string, unknown>[]; text: () => string; stream: Writable } {
  const chunks: string[] = [];
  const stream = new Writable({
    write(chunk: Buffer, _enc, done) {
      chunks.push(chunk.toString());
      done();
    },
  });
  return { stream, text: () => chunks.join(''), lines: () => chunks.join('').trim().split('\n').map((l) => JSON.parse(l) as Record<string, unknown>) };
}

const SECRET = 'S3cr3t-abcd-efgh-ijkl';

describe('logger redaction at any depth', () => {
  it('redacts a secret-named field three, five and nine levels down, in arrays, in any letter case', () => {
    const out = capture();
    const log = createLogger('info', out.stream);
    log.info(
      {
        a: { b: { c: { password: SECRET } } },
        d: { e: { f: { g: { accessToken: SECRET, ok: 'kept' } } } },
        list: [{ Authorization: `Bearer ${SECRET}` }, [{ refresh_token: SECRET }]],
        deep: { l1: { l2: { l3: { l4: { l5: { l6: { l7: { l8: { client_secret: SECRET } } } } } } } } },
      },
      'event',
    );
    assert.doesNotMatch(out.text(), new RegExp(SECRET));
    const [line] = out.lines();
    const d = line!['d'] as { e: { f: { g: Record<string, string> } } };
    assert.deepEqual(d.e.f.g, { accessToken: '[redacted]', ok: 'kept' });
  });

  it('redacts inside errors, their own fields and their causes', () => {
    const out = capture();
    const log = createLogger('info', out.stream);
    const cause = Object.assign(new Error('inner'), { request: { headers: { authorization: SECRET } } });
    const err = Object.assign(new Error('outer', { cause }), { response: { body: { id_token: SECRET } } });
    log.error({ err, nested: { err: Object.assign(new Error('x'), { pepper: SECRET }) } }, 'failed');
    assert.doesNotMatch(out.text(), new RegExp(SECRET));
    const [line] = out.lines();
    assert.equal((line!['err'] as { message: string }).message, 'outer');
    assert.equal((line!['err'] as { type: string }).type, 'Error');
    assert.equal((line!['err'] as { cause: { message: string } }).cause.message, 'inner');
    assert.match(String((line!['err'] as { stack: string }).stack), /outer/);
  });

  it('prints cycles and other classes without failing, and leaves ordinary fields alone', () => {
    const out = capture();
    const log = createLogger('info', out.stream);
    const loop: Record<string, unknown> = { name: 'loop' };
    loop['self'] = loop;
    log.info({ loop, when: new Date(0), bytes: 12, user: 'alice@example.com', passed: true }, 'event');
    const [line] = out.lines();
    assert.deepEqual(line!['loop'], { name: 'loop', self: '[circular]' });
    assert.equal(line!['when'], '1970-01-01T00:00:00.000Z');
    assert.deepEqual([line!['user'], line!['bytes'], line!['passed']], ['alice@example.com', 12, true]);
  });
});
