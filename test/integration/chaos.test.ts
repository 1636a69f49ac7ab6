import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { DEPENDENCIES } from '../chaos/chaos-env.js';
import { formatReport } from '../chaos/chaos-report.js';
import { runChaos } from '../chaos/chaos-run.js';

/**
 * The short chaos run (the long one is `npm run chaos`, docs/chaos.md): `passgate serve` in its own process on
 * Redis, with real Dovecot, OAuth and upstream SMTP servers, while each of those four is killed (Redis also
 * frozen) and brought back at seeded random moments under a steady load of senders and readers.
 */
describe('chaos: dependencies killed and restarted under load', () => {
  it('passgate never crashes, every 250 is delivered exactly once and nothing else, only temporary errors, quick recovery', { timeout: 300_000 }, async () => {
    const lines: string[] = [];
    const report = await runChaos({
      durationMs: 35_000,
      seed: 20261122,
      senders: 3,
      readers: 2,
      users: 2,
      minDownMs: 1000,
      maxDownMs: 2500,
      minGapMs: 300,
      maxGapMs: 1500,
      maxRecoveryMs: 10_000,
      log: (line) => lines.push(line),
    });
    const text = formatReport(report);
    console.log(text);
    assert.deepEqual(report.violations, [], `${lines.join('\n')}\n${text}`);
    // The run did what it claims: every dependency went away at least once, and mail flowed both ways.
    for (const name of DEPENDENCIES) assert.ok(report.actions.some((a) => a.dependency === name), `${name} was never taken away`);
    // Not a throughput floor (that is npm run bench's business; a loaded machine does less in 35 s): the run must
    // only have done real work on both protocols, so that "no violations" is not vacuous.
    assert.ok(report.smtp.accepted > 0, `no message got a 250`);
    assert.ok(report.imap.ok > 0, `no IMAP session worked`);
    assert.ok(report.smtp.temporary + report.imap.temporary > 0, 'no client ever saw a dependency missing');
    // Short token lifetimes: passgate fetched new tokens during the run, not just once at the start.
    assert.ok((report.oauthCounts.client_credentials ?? 0) >= 2, `token grants: ${report.oauthCounts.client_credentials}`);
    assert.equal(report.delivered, report.smtp.accepted);
  });
});
