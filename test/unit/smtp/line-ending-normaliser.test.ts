import assert from 'node:assert/strict';
import { Readable } from 'node:stream';
import { describe, it } from 'node:test';
import { LineEndingNormaliser } from '../../../src/smtp/line-ending-normaliser.js';

async function run(chunks: string[]): Promise<string> {
  const out: Buffer[] = [];
  const stage = Readable.from(chunks.map((c) => Buffer.from(c, 'latin1'))).pipe(new LineEndingNormaliser());
  for await (const chunk of stage) out.push(chunk as Buffer);
  return Buffer.concat(out).toString('latin1');
}

describe('LineEndingNormaliser', () => {
  const input = 'a\r.\rb\n.\nc\r\n.\rd\r\n.\ne\r';
  const expected = 'a\r\n.\r\nb\r\n.\r\nc\r\n.\r\nd\r\n.\r\ne\r\n';

  it('turns every bare CR and bare LF into CRLF and leaves CRLF alone', async () => {
    assert.equal(await run([input]), expected);
  });

  it('gives the same bytes however the input is cut (CR at the end of a chunk, LF at the start of the next)', async () => {
    for (let cut = 1; cut < input.length; cut++) assert.equal(await run([input.slice(0, cut), input.slice(cut)]), expected, `cut at ${cut}`);
    assert.equal(await run([...input]), expected, 'one byte a chunk');
  });

  it('matches the rule on random bodies cut at random places (CR, LF, "." and text, seeded)', async () => {
    let seed = 22;
    const random = () => ((seed = (seed * 1103515245 + 12345) % 2 ** 31) / 2 ** 31);
    const alphabet = ['\r', '\n', '.', 'a', 'b', '\r\n', ' '];
    for (let round = 0; round < 200; round++) {
      const body = Array.from({ length: Math.floor(random() * 60) }, () => alphabet[Math.floor(random() * alphabet.length)]).join('');
      const chunks: string[] = [];
      for (let at = 0; at < body.length; ) {
        const size = 1 + Math.floor(random() * 8);
        chunks.push(body.slice(at, at + size));
        at += size;
      }
      assert.equal(await run(chunks), body.replace(/\r\n|\r|\n/g, '\r\n'), JSON.stringify(chunks));
    }
  });

  it('refuses NUL', async () => {
    await assert.rejects(run(['a\r\n\0.\r\n']), /NUL/);
  });
});
