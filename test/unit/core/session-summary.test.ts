import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { SessionSummary } from '../../../src/core/session-summary.js';
import type { SessionMetrics } from '../../../src/core/session-metrics.js';
import { Metrics } from '../../../src/observability/metrics.js';

function recorder() {
  const lines: { details: Record<string, unknown>; message: string }[] = [];
  const log = { info: (details: object, message: string) => void lines.push({ details: details as Record<string, unknown>, message }), warn() {}, error() {} };
  return { lines, log };
}

const gauge = async (metrics: Metrics, protocol: string, state: string) =>
  (await metrics.sessions.get()).values.find((v) => v.labels.protocol === protocol && v.labels.state === state)?.value;

describe('SessionSummary', () => {
  it('moves the gauge from unauthenticated to authenticated to closed, and logs once with the first reason', async () => {
    const metrics = new Metrics();
    const { lines, log } = recorder();
    let now = 1_000;
    const wire = { bytesRead: 10, bytesWritten: 20 };
    const summary = new SessionSummary({ session: 's1', protocol: 'smtp', listener: 'submission', ip: '192.0.2.1' }, wire, {
      metrics: metrics.smtp().sessions,
      log,
      clock: () => now,
    });
    assert.deepEqual([await gauge(metrics, 'smtp', 'unauthenticated'), await gauge(metrics, 'smtp', 'authenticated')], [1, 0]);
    summary.authenticated({ username: 'u@x', mailbox: 'm@x', appPasswordId: 'id1', appPasswordName: 'Scanner' });
    assert.deepEqual([await gauge(metrics, 'smtp', 'unauthenticated'), await gauge(metrics, 'smtp', 'authenticated')], [0, 1]);
    summary.message(2);
    summary.message(1);
    summary.closing('too-many-failures');
    summary.closing('shutdown');
    now = 3_500;
    wire.bytesRead = 100;
    summary.end();
    summary.end('error');
    assert.deepEqual([await gauge(metrics, 'smtp', 'unauthenticated'), await gauge(metrics, 'smtp', 'authenticated')], [0, 0]);
    assert.equal(lines.length, 1);
    assert.equal(lines[0]!.message, 'session closed');
    assert.deepEqual(lines[0]!.details, {
      session: 's1',
      protocol: 'smtp',
      listener: 'submission',
      ip: '192.0.2.1',
      user: 'u@x',
      mailbox: 'm@x',
      appPasswordId: 'id1',
      appPasswordName: 'Scanner',
      messages: 2,
      recipients: 3,
      bytesIn: 100,
      bytesOut: 20,
      durationMs: 2500,
      reason: 'too-many-failures',
    });
    const closed = (await metrics.sessionsClosed.get()).values;
    assert.deepEqual(closed.map((v) => [v.labels, v.value]), [[{ protocol: 'smtp', reason: 'too-many-failures' }, 1]]);
  });

  it('an IMAP session that never logged in has no user fields and no message counts', () => {
    const { lines, log } = recorder();
    const counted: string[] = [];
    const metrics: SessionMetrics = { opened: () => counted.push('opened'), authenticated: () => counted.push('auth'), closed: (a, r) => counted.push(`closed ${a} ${r}`) };
    new SessionSummary({ session: 's2', protocol: 'imap', listener: 'imaps', ip: '::1' }, { bytesRead: 1, bytesWritten: 2 }, { metrics, log }).end();
    assert.deepEqual(counted, ['opened', 'closed false client-closed']);
    assert.deepEqual(Object.keys(lines[0]!.details).sort(), ['bytesIn', 'bytesOut', 'durationMs', 'ip', 'listener', 'protocol', 'reason', 'session']);
  });
});
