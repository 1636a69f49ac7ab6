import { after, before, describe, it } from 'node:test';
import fc from 'fast-check';
import { TEST_SEED } from './fuzz-property.js';
import { imapParserProperties } from './imap-parser.fuzz.js';
import { checkUnmutatedTranscripts, ImapSessionRig, imapSessionProperties } from './imap-session.fuzz.js';

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
