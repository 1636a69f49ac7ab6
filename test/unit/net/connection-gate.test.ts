import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { ConnectionLimiter } from '../../../src/core/connection-limiter.js';
import { NetworkList } from '../../../src/core/network-list.js';
import { ConnectionGate, MAX_REFUSALS_IN_FLIGHT, REFUSAL_LOG_INTERVAL_MS } from '../../../src/net/connection-gate.js';

function gate() {
  let now = 1_000_000;
  const refused: string[] = [];
  const lines: Record<string, unknown>[] = [];
  const log = { info() {}, error() {}, warn: (details: object) => void lines.push(details as Record<string, unknown>) };
  const g = new ConnectionGate('imap', new ConnectionLimiter({ maxTotal: 100, maxPerIp: 1, exempt: new NetworkList([]) }), {
    metrics: { refused: (protocol, reason) => void refused.push(`${protocol}/${reason}`) },
    log,
    clock: () => now,
  });
  return { g, refused, lines, advance: (ms: number) => (now += ms) };
}

describe('ConnectionGate', () => {
  it('counts every refusal but logs a flood at most once per interval, saying how many it left out', () => {
    const { g, refused, lines, advance } = gate();
    assert.ok(g.admit('192.0.2.1', 'imaps').ok);
    for (let i = 0; i < 500; i++) assert.equal(g.admit('192.0.2.1', 'imaps').ok, false);
    assert.equal(refused.length, 500);
    assert.ok(refused.every((r) => r === 'imap/per-ip'));
    assert.equal(lines.length, 1);
    assert.deepEqual(lines[0], { protocol: 'imap', listener: 'imaps', ip: '192.0.2.1', reason: 'per-ip', open: 1, openFromIp: 1, suppressed: 0 });
    advance(REFUSAL_LOG_INTERVAL_MS);
    g.admit('192.0.2.1', 'imap');
    assert.equal(lines.length, 2);
    assert.equal(lines[1]!.suppressed, 499);
  });

  it('hands out a bounded number of refusal tickets, each returned once', () => {
    const { g } = gate();
    const tickets = Array.from({ length: MAX_REFUSALS_IN_FLIGHT }, () => g.beginRefusal());
    assert.ok(tickets.every((t) => t !== null));
    assert.equal(g.beginRefusal(), null);
    tickets[0]!();
    tickets[0]!();
    assert.notEqual(g.beginRefusal(), null);
    assert.equal(g.beginRefusal(), null);
  });
});
