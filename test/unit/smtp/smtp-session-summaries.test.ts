import assert from 'node:assert/strict';
import { EventEmitter } from 'node:events';
import type { Socket } from 'node:net';
import { describe, it } from 'node:test';
import type { SMTPServerSession } from 'smtp-server';
import { Metrics } from '../../../src/observability/metrics.js';
import { SmtpSessionSummaries } from '../../../src/smtp/smtp-session-summaries.js';

function recorder() {
  const lines: { details: Record<string, unknown>; message: string }[] = [];
  const log = { info: (details: object, message: string) => void lines.push({ details: details as Record<string, unknown>, message }), warn() {}, error() {} };
  return { lines, log };
}

describe('SmtpSessionSummaries', () => {
  const wire = () => Object.assign(new EventEmitter(), { bytesRead: 0, bytesWritten: 0, destroyed: false }) as unknown as Socket;
  const reasons = (lines: { details: Record<string, unknown> }[]) => lines.map((l) => [l.details.session, l.details.reason]);

  it('reads a timeout or a server close from smtp-server\'s last 421, and passgate\'s own reasons win', () => {
    const { lines, log } = recorder();
    const summaries = new SmtpSessionSummaries(new Metrics().smtp().sessions, log);
    for (const id of ['a', 'b', 'c', 'd']) summaries.opened(id, 'submission', '192.0.2.1', wire());
    summaries.closed({ id: 'a', error: '421 Timeout - closing connection' } as unknown as SMTPServerSession);
    summaries.closed({ id: 'b', error: '421 4.4.2 upstream closing' } as unknown as SMTPServerSession);
    summaries.closing('c', 'shutdown');
    summaries.closed({ id: 'c', error: '421 4.3.2 Service shutting down, try again later' } as unknown as SMTPServerSession);
    summaries.closed({ id: 'd', error: '535 5.7.8 Authentication credentials invalid' } as unknown as SMTPServerSession);
    summaries.closed({ id: 'd' } as unknown as SMTPServerSession);
    assert.deepEqual(reasons(lines), [['a', 'timeout'], ['b', 'server-closed'], ['c', 'shutdown'], ['d', 'client-closed']]);
  });

  it('ends a session whose socket closed without an onClose, a second later', async () => {
    const { lines, log } = recorder();
    const summaries = new SmtpSessionSummaries(new Metrics().smtp().sessions, log);
    const socket = wire();
    summaries.opened('lost', 'submission', '192.0.2.1', socket);
    socket.emit('close');
    assert.equal(lines.length, 0);
    const deadline = Date.now() + 10_000;
    while (lines.length === 0 && Date.now() < deadline) await new Promise((r) => setTimeout(r, 50));
    assert.deepEqual(reasons(lines), [['lost', 'client-closed']]);
    summaries.closed({ id: 'lost' } as unknown as SMTPServerSession);
    assert.equal(lines.length, 1, 'still one line');
  });
});
