import assert from 'node:assert/strict';
import { Readable } from 'node:stream';
import { describe, it } from 'node:test';
import { DotStuffer } from '../../../../src/upstream/smtp/dot-stuffer.js';

async function run(chunks: string[]): Promise<string> {
  const out: Buffer[] = [];
  for await (const chunk of Readable.from(chunks.map((c) => Buffer.from(c, 'latin1'))).pipe(new DotStuffer())) out.push(chunk as Buffer);
  return Buffer.concat(out).toString('latin1');
}

/** RFC 5321 §4.5.2 on the whole message at once: a "." starting a line gets another, and the end marker follows. */
const rule = (body: string) => `${body.replace(/(^|\n)\./g, '$1..')}${body.endsWith('\r\n') ? '.\r\n' : '\r\n.\r\n'}`;

describe('DotStuffer', () => {
  it('stuffs lines starting with "." and adds the end marker', async () => {
    assert.equal(await run(['.a\r\nb\r\n..c\r\n.\r\n']), '..a\r\nb\r\n...c\r\n..\r\n.\r\n');
    assert.equal(await run(['no line end']), 'no line end\r\n.\r\n');
    assert.equal(await run([]), '\r\n.\r\n');
  });

  it('matches the rule on random bodies cut at random places (a "." right after a chunk ending in LF too; seeded)', async () => {
    let seed = 3030;
    const random = () => ((seed = (seed * 1103515245 + 12345) % 2 ** 31) / 2 ** 31);
    const alphabet = ['\r\n', '.', '.', 'a', '\n', ' '];
    for (let round = 0; round < 200; round++) {
      const body = Array.from({ length: Math.floor(random() * 60) }, () => alphabet[Math.floor(random() * alphabet.length)]).join('');
      const chunks: string[] = [];
      for (let at = 0; at < body.length; ) {
        const size = 1 + Math.floor(random() * 8);
        chunks.push(body.slice(at, at + size));
        at += size;
      }
      assert.equal(await run(chunks), rule(body), JSON.stringify(chunks));
    }
  });
});
