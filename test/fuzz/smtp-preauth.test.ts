import { after, before, describe, it } from 'node:test';
import fc from 'fast-check';
import { TEST_SEED } from './fuzz-property.js';
import { checkUnmutatedTranscripts, SmtpGatewayRig, smtpSessionProperties } from './smtp-session.fuzz.js';

// Seeded and bounded; `npm run fuzz -- --target smtp` runs the same properties for a time with fresh seeds.

describe('fuzz: SMTP gateway up to and through AUTH (real gateway, upstream and OAuth server on loopback)', () => {
  let rig: SmtpGatewayRig;
  before(async () => {
    rig = await SmtpGatewayRig.start();
  });
  after(async () => rig.close());

  it('the transcripts the fuzzing mutates log in, unmutated', () => checkUnmutatedTranscripts(rig));

  for (const p of smtpSessionProperties(() => rig)) {
    it(p.name, () => fc.assert(p.property, { seed: TEST_SEED, numRuns: p.numRuns, includeErrorInReport: true }));
  }

  it('a good login still works after the fuzzing', () => checkUnmutatedTranscripts(rig));
});
