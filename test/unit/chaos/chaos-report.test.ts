import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { buildReport, type ReportInput } from '../../chaos/chaos-report.js';
import type { ReadOutcome } from '../../chaos/imap-reader.js';
import { markUpstreamStalls } from '../../chaos/mark-upstream-stalls.js';
import { chaosIdOf, chaosMessage, type SendOutcome } from '../../chaos/smtp-sender.js';

// The chaos run is only worth something if its checker fails when an invariant breaks: each case here breaks one.

const send = (id: string, result: SendOutcome['result'], reply = ''): SendOutcome & { probe: boolean } => ({
  id,
  result,
  stage: result === 'accepted' ? 'dot' : 'auth',
  reply,
  at: 0,
  ms: 10,
  probe: false,
});
const read = (result: ReadOutcome['result'], detail = '', afterLogin: ReadOutcome['afterLogin'] = null): ReadOutcome & { probe: boolean } => ({
  result,
  stage: afterLogin ? 'select' : 'login',
  detail,
  at: 0,
  ms: 10,
  exists: 0,
  afterLogin,
  probe: false,
});

const healthy: ReportInput = {
  options: { seed: 1, senders: 1, readers: 1, users: 1, maxRecoveryMs: 10_000 },
  elapsedMs: 1000,
  actions: [{ at: 100, dependency: 'redis', mode: 'kill', downMs: 1000, recoveryMs: 500 }],
  sends: [send('a', 'accepted'), send('b', 'temporary', '454 4.7.0 Temporary authentication failure')],
  reads: [read('ok'), read('temporary', 'a NO [UNAVAILABLE] try again')],
  deliveredIds: ['a'],
  passgate: { alive: true, healthy: true, exit: null, stopExitCode: 0, errorLogLines: 0, stderrTail: '', logPath: '/tmp/x' },
  finalOk: true,
  oauthCounts: {},
};

describe('chaos report: the invariants', () => {
  it('a clean run has no violations', () => {
    assert.deepEqual(buildReport(healthy).violations, []);
  });

  const breaks: [string, Partial<ReportInput>, RegExp][] = [
    ['a duplicate delivery', { deliveredIds: ['a', 'a'] }, /delivered more than once/],
    ['a 250 never delivered', { deliveredIds: [] }, /got a 250 but were never delivered/],
    ['a delivery after a 4xx', { deliveredIds: ['a', 'b'] }, /delivered without a 250/],
    ['a 5xx', { sends: [send('a', 'accepted'), send('c', 'permanent', '535 5.7.8 invalid')] }, /permanent \(5xx\)/],
    ['a hang', { sends: [send('a', 'accepted'), send('c', 'timeout')] }, /hang/],
    ['a wrong password answer', { reads: [read('failed', 'a NO [AUTHENTICATIONFAILED] Authentication failed.')] }, /wrong answer/],
    ['a slow recovery', { actions: [{ at: 1, dependency: 'oauth', mode: 'kill', downMs: 1000, recoveryMs: 12_000 }] }, /not back within 10000 ms/],
    ['no recovery', { actions: [{ at: 1, dependency: 'dovecot', mode: 'kill', downMs: 1000, recoveryMs: null }] }, /never/],
    ['a crash', { passgate: { ...healthy.passgate, alive: false, exit: { code: 1, signal: null } } }, /passgate exited/],
    ['a delivery without a chaos id', { deliveredIds: ['a', null] }, /no chaos id/],
    ['an unclean stop', { passgate: { ...healthy.passgate, stopExitCode: 1 } }, /did not stop cleanly/],
  ];
  for (const [what, change, message] of breaks) {
    it(`flags ${what}`, () => {
      const violations = buildReport({ ...healthy, ...change }).violations;
      assert.ok(violations.some((v) => message.test(v)), violations.join('\n') || '(no violations)');
    });
  }

  it('reads the chaos id from the header only', () => {
    assert.equal(chaosIdOf(Buffer.from(chaosMessage('7-s1-42', 'a@example.com'))), '7-s1-42');
    assert.equal(chaosIdOf(Buffer.from('Subject: other\r\n\r\nX-Chaos-Id: in-the-body\r\n')), null);
  });
});

describe('chaos report: a Dovecot silence after login is told apart from a passgate hang', () => {
  const ended = (fromClient: number, fromUpstream: number, durationMs: number, reason = 'client-closed') =>
    JSON.stringify({ msg: 'imap session ended', reason, fromClient, fromUpstream, durationMs });

  it('only when passgate carried exactly the bytes the client sent and received, for at least the wait', () => {
    const reads = [read('timeout', '', { sent: 16, received: 0 }), read('timeout', '', { sent: 16, received: 0 }), read('timeout')];
    markUpstreamStalls(reads, [ended(16, 0, 30_200), ended(16, 5, 30_200), ended(16, 0, 2_000)].join('\n'), 30_000);
    assert.deepEqual(
      reads.map((r) => r.result),
      ['upstream-stall', 'timeout', 'timeout'],
    );
  });
});
