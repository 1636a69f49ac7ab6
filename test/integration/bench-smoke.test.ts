/**
 * `npm run bench` works from a clean clone: every scenario runs end to end (real passgate child, upstream process,
 * Dovecot) with tiny counts, prints its table and writes its results. What it measures is not asserted here:
 * performance lives in the benchmarks themselves (docs/benchmarks.md), never in timed tests.
 *
 * It runs bench/run.ts the way `npm run bench` does after its build step; the built CLI in dist/ comes from
 * `npm ci` (the prepare script), as for the other tests that start `bin/passgate.js`.
 */
import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { existsSync, mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { promisify } from 'node:util';
import { after, describe, it } from 'node:test';

const REPO = join(dirname(fileURLToPath(import.meta.url)), '..', '..');
const SCENARIOS = ['login-latency', 'smtp-throughput', 'graph-throughput', 'imap-throughput', 'imap-idle', 'pop3-throughput', 'brute-force'];

describe('npm run bench (tiny counts)', { timeout: 240_000 }, () => {
  const results = mkdtempSync(join(tmpdir(), 'passgate-bench-smoke-'));
  after(() => rmSync(results, { recursive: true, force: true }));

  it('runs every scenario and writes a table for each', async () => {
    const { stdout } = await promisify(execFile)(process.execPath, ['--import', 'tsx', 'bench/run.ts'], {
      cwd: REPO,
      timeout: 230_000,
      maxBuffer: 16 * 1024 * 1024,
      env: {
        ...process.env,
        BENCH_RESULTS_DIR: results,
        BENCH_LOGINS_COLD: '4',
        BENCH_LOGINS_WARM: '8',
        BENCH_SMTP_MESSAGES: '4',
        BENCH_SMTP_MESSAGES_PER_CONNECTION: '2',
        BENCH_GRAPH_MESSAGES: '4',
        BENCH_GRAPH_LARGE_MESSAGES: '2',
        BENCH_WAN_MESSAGES: '4',
        BENCH_WAN_MESSAGES_PER_CONNECTION: '2',
        BENCH_FETCH_MESSAGES: '4',
        BENCH_FETCH_ROUNDS: '1',
        BENCH_IMAP_LOGINS_WARM: '4',
        BENCH_IMAP_LOGINS_COLD: '2',
        BENCH_NOOPS: '4',
        BENCH_IDLE_SESSIONS: '8',
        BENCH_IDLE_MAILBOXES: '2',
        BENCH_POP3_MESSAGES: '4',
        BENCH_POP3_ROUNDS: '1',
        BENCH_POP3_LOGINS: '4',
        BENCH_BRUTE_SECONDS: '2',
        BENCH_BRUTE_CONNECTIONS: '1',
      },
    });
    for (const name of SCENARIOS) {
      assert.ok(existsSync(join(results, `${name}.json`)), `${name}.json written`);
      const markdown = readFileSync(join(results, `${name}.md`), 'utf8');
      assert.match(markdown, /^## /m, `${name}.md has a heading`);
      assert.match(markdown, /^\|.*\|$/m, `${name}.md has a table`);
      assert.ok(stdout.includes(markdown.split('\n')[0]!), `${name}'s table printed`);
    }
    const latest = readFileSync(join(results, 'latest.md'), 'utf8');
    for (const name of SCENARIOS) assert.ok(latest.includes(name), `latest.md names ${name}`);
    // The IDLE scenario checks that every session was told of the new message; so does its table.
    const idle = JSON.parse(readFileSync(join(results, 'imap-idle.json'), 'utf8')) as { through: { reached: number }; parameters: { sessions: number } };
    assert.equal(idle.through.reached, idle.parameters.sessions);
  });
});
