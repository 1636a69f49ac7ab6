import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import fc from 'fast-check';
import { TEST_SEED } from './fuzz-property.js';
import { imapParserProperties } from './imap-parser.fuzz.js';
import { ImapSessionRig } from './imap-session-rig.js';
import { checkUnmutatedTranscripts, imapSessionProperties } from './imap-session.fuzz.js';
import { line, send } from './mutations.js';

// Seeded and bounded; `npm run fuzz -- --target imap` runs the same properties for a time with fresh seeds.

describe('fuzz: IMAP line reader and command parser', () => {
  for (const p of imapParserProperties) it(p.name, () => fc.assert(p.property, { seed: TEST_SEED, numRuns: p.numRuns, includeErrorInReport: true }));
});

describe('fuzz: IMAP session before login (real sockets, fake ports)', () => {
  let rig: ImapSessionRig;
  before(async () => {
    rig = await ImapSessionRig.start();
  });
  after(async () => rig.close());

  it('the transcripts the fuzzing mutates get an answer to every tag, unmutated', () => checkUnmutatedTranscripts(rig));

  for (const p of imapSessionProperties(() => rig)) it(p.name, () => fc.assert(p.property, { seed: TEST_SEED, numRuns: p.numRuns, includeErrorInReport: true }));
});

describe('regressions found by fuzzing the IMAP session', () => {
  let rig: ImapSessionRig;
  before(async () => {
    rig = await ImapSessionRig.start();
  });
  after(async () => rig.close());

  // A SASL response is a line like any other: over the limit, the session ends at once, not at the login timeout
  // behind an AUTHENTICATE still waiting for a line its closed reader will never give.
  for (const opener of [['a AUTHENTICATE PLAIN'], ['b AUTHENTICATE LOGIN'], ['c AUTHENTICATE LOGIN', 'dXNlcg==']]) {
    it(`a SASL response over the line limit after ${opener.join(' / ')} ends the session with BYE at once`, async () => {
      // expectClose: the server closes by itself (within 5 s; the login timeout here is 60 s).
      const out = await rig.run(
        { listener: 'plaintext-listed', pacing: 'lockstep', steps: [...opener.map(line), send(Buffer.alloc(9000, 'x'))] },
        { expectClose: true },
      );
      assert.match(out, /^\* BYE Line too long\r\n$/m);
    });
  }
});
