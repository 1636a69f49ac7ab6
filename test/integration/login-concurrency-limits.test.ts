import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { startSmtpHarness } from '../helpers/smtp-harness.js';
import { plain, SmtpTranscript } from '../helpers/smtp-transcript.js';

// auth.parallel_per_ip and auth.hash_queue_limit as a client sees them (issue 21): argon2 runs one at a time
// (hash_concurrency 1, at its real cost) with no queue (hash_queue_limit 0), and eight clients from one address
// send AUTH at the same moment.
const config = (parallelPerIp: number) => ({
  auth: { failure_delay_ms: 0, failure_delay_jitter_ms: 0, hash_concurrency: 1, hash_queue_limit: 0, parallel_per_ip: parallelPerIp, max_failures_per_connection: 10 },
  security: { argon2: { memory_kib: 19456, time_cost: 2, parallelism: 1 } },
  rate_limit: { pair: { max_failures: 100 }, ip: { burst_failures: 1000, daily_failures: 1000 }, user: { max_distinct_failures: 100 } },
});

/** A wrong password of the app-password shape (one that is not is refused before any hashing). */
function wrongLike(password: string, i: number): string {
  const letters = password.replaceAll('-', '');
  const rotated = letters.slice(i + 1) + letters.slice(0, i + 1);
  return rotated.match(/.{1,4}/g)!.join('-');
}

async function eightAtOnce(port: number, password: string): Promise<string[]> {
  const clients: SmtpTranscript[] = [];
  for (let i = 0; i < 8; i++) {
    const t = await SmtpTranscript.connect(port, { tls: true });
    await t.expect(/^220 /);
    t.send('EHLO client.test');
    await t.expect(/^250 /m);
    clients.push(t);
  }
  clients.forEach((t, i) => t.send(`AUTH PLAIN ${plain(`nobody${i}@example.com`, wrongLike(password, i))}`));
  const replies = await Promise.all(clients.map((t) => t.expect(/^\d{3} /, 30_000)));
  for (const t of clients) t.close();
  return replies.map((r) => r.slice(0, 3));
}

describe('login concurrency limits, as clients see them', () => {
  it('auth.parallel_per_ip 1: logins from one address wait their turn, so none overflows the hashing queue', async () => {
    const h = await startSmtpHarness({ config: config(1) });
    try {
      assert.deepEqual(await eightAtOnce(h.ports.submissions!, h.password), Array(8).fill('535'));
    } finally {
      await h.close();
    }
  });

  it('auth.hash_queue_limit 0 with parallel_per_ip 64: logins beyond the hashing slot are refused as temporary (454)', async () => {
    const h = await startSmtpHarness({ config: config(64) });
    try {
      const codes = await eightAtOnce(h.ports.submissions!, h.password);
      assert.ok(codes.includes('454'), `a temporary refusal among ${codes.join(' ')}`);
      assert.ok(codes.every((c) => c === '454' || c === '535'), codes.join(' '));
    } finally {
      await h.close();
    }
  });
});
