import { after, before, describe, it } from 'node:test';
import fc from 'fast-check';
import { TEST_SEED } from './fuzz-property.js';
import { pop3ParserProperties, Pop3SessionRig, pop3SessionProperties } from './pop3-session.fuzz.js';

// Seeded and bounded; `npm run fuzz -- --target pop3` runs the same properties for a time with fresh seeds.

describe('fuzz: POP3 line reader and command parser', () => {
  for (const p of pop3ParserProperties) it(p.name, () => fc.assert(p.property, { seed: TEST_SEED, numRuns: p.numRuns, includeErrorInReport: true }));
});

describe('fuzz: POP3 session before login (real sockets, fake ports)', () => {
  let rig: Pop3SessionRig;
  before(async () => {
    rig = await Pop3SessionRig.start();
  });
  after(async () => rig.close());

  for (const p of pop3SessionProperties(() => rig)) it(p.name, () => fc.assert(p.property, { seed: TEST_SEED, numRuns: p.numRuns, includeErrorInReport: true }));
});
