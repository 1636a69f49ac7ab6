/**
 * POP3 through passgate vs directly against the same Dovecot, in one run (bench/fixture/bench-world.ts):
 *
 * - RETR of BENCH_POP3_MESSAGES (2,000) × 50 KB over TLS, pipelined: throughput ratio, goal >= 0.95;
 * - login + QUIT rate at concurrency 8, warm (credential cache): direct is AUTH XOAUTH2 with a token from the same
 *   OAuth server, through passgate USER/PASS with an app password (passgate then does the XOAUTH2 login itself).
 *
 * The client is a minimal wire client (fixture/pop3-wire-client.ts).
 */
import { readFileSync } from 'node:fs';
import { performance } from 'node:perf_hooks';
import { startWorld } from './fixture/bench-world.js';
import { compare, comparisonTable, envCount, median, pool, type Comparison } from './fixture/comparison.js';
import { xoauth2 } from './fixture/imap-wire-client.js';
import { Pop3Wire } from './fixture/pop3-wire-client.js';
import { fmt, invocation, machine, machineMarkdown } from './stats.js';

const LOGIN_CONCURRENCY = 8;

function message(i: number, bytes: number): Buffer {
  const head = `From: sender@bench.example\r\nTo: fetcher0@bench.example\r\nSubject: bench message ${i}\r\nMessage-ID: <bench-pop3-${i}@bench.example>\r\nDate: Sun, 22 Nov 2026 08:00:00 +0000\r\n\r\n`;
  const line = 'abcdefghijklmnopqrstuvwxyz0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789\r\n';
  return Buffer.from(head + line.repeat(Math.ceil((bytes - head.length) / line.length)));
}

export async function runPop3Throughput(): Promise<{ markdown: string; json: unknown }> {
  const messages = envCount('BENCH_POP3_MESSAGES', 2000);
  const rounds = envCount('BENCH_POP3_ROUNDS', 3);
  const logins = envCount('BENCH_POP3_LOGINS', 400);
  const world = await startWorld({ dovecot: true });
  try {
    const users = Array.from({ length: LOGIN_CONCURRENCY }, (_, i) => `fetcher${i}@bench.example`);
    const passwords = await world.createPasswords(users);
    const passgate = await world.startPassgate();
    const token = await world.token();
    const dovecotCa = readFileSync(world.dovecotCaFile!, 'utf8');
    const passgateCa = readFileSync(world.passgateCaFile, 'utf8');
    // RFC 5034 §4: an XOAUTH2 response longer than a command line goes after the server's empty challenge.
    const direct = async (user: string) => {
      const c = await Pop3Wire.connect({ port: world.dovecot!.pop3sPort, ca: dovecotCa, servername: 'localhost' });
      const challenge = await c.command('AUTH XOAUTH2');
      if (!challenge.startsWith('+')) throw new Error(`AUTH XOAUTH2: ${challenge}`);
      await c.command(xoauth2(user, token));
      return c;
    };
    const through = async (user: string) => {
      const c = await Pop3Wire.connect({ port: passgate.ports.pop3.pop3s!, ca: passgateCa, servername: 'passgate.test' });
      await c.command(`USER ${user}`);
      await c.command(`PASS ${passwords.get(user)!}`);
      return c;
    };

    // ---- RETR of every message, pipelined
    const reader = users[0]!;
    let deliveredBytes = 0;
    for (let i = 0; i < messages; i++) {
      const m = message(i, 50 * 1024);
      deliveredBytes += m.length;
      await world.dovecot!.deliver(reader, m);
    }
    const retrOnce = async (open: (user: string) => Promise<Pop3Wire>) => {
      const c = await open(reader);
      try {
        const stat = await c.command('STAT');
        if (Number(stat.split(' ')[1]) !== messages) throw new Error(`STAT: ${stat}`);
        const cpu = passgate.cpuMs();
        const start = performance.now();
        const bytes = await c.retrAll(messages);
        const ms = performance.now() - start;
        const passgateCpuMs = passgate.cpuMs() - cpu;
        await c.command('QUIT'); // deletes nothing: no DELE was sent
        return { mbps: bytes / 1e6 / (ms / 1000), bytes, ms, passgateCpuMs };
      } finally {
        c.close();
      }
    };
    await retrOnce(direct); // Dovecot indexes the new mail on the first login: not measured
    await retrOnce(through);
    const retrDirect: number[] = [];
    const retrThrough: number[] = [];
    const retrCapacity: number[] = [];
    let retrBytes = 0;
    for (let r = 0; r < rounds; r++) {
      const order = r % 2 ? [through, direct] : [direct, through];
      for (const open of order) {
        const result = await retrOnce(open);
        retrBytes = result.bytes;
        (open === direct ? retrDirect : retrThrough).push(result.mbps);
        if (open !== direct) retrCapacity.push(result.bytes / 1e6 / (result.passgateCpuMs / 1000));
      }
    }

    // ---- login + QUIT rate
    const loginRate = async (open: (user: string) => Promise<Pop3Wire>, n: number) => {
      const wall = await pool(n, LOGIN_CONCURRENCY, async (i) => {
        const c = await open(users[i % users.length]!);
        await c.command('QUIT');
        c.close();
      });
      return (n / wall) * 1000;
    };
    await loginRate(direct, 40);
    await loginRate(through, 40); // primes the credential cache
    const loginDirect: number[] = [];
    const loginThrough: number[] = [];
    for (let r = 0; r < 4; r++) {
      const order = r % 2 ? ['through', 'direct'] : ['direct', 'through'];
      for (const which of order) {
        const rate = await loginRate(which === 'direct' ? direct : through, Math.ceil(logins / 4));
        (which === 'direct' ? loginDirect : loginThrough).push(rate);
      }
    }

    const rows: Comparison[] = [
      compare(`RETR ${messages} × 50 KB, pipelined (median of ${rounds})`, 'MB/s', median(retrDirect), median(retrThrough), { atLeast: 0.95 }, 'client, passgate and Dovecot share the cores'),
      compare(
        'RETR: passgate with a core of its own (MB per CPU-second of passgate)',
        'MB/s',
        median(retrDirect),
        median(retrCapacity),
        { atLeast: 0.95 },
        'bytes relayed / passgate CPU time during the RETRs',
      ),
      compare(
        `login + QUIT, warm, concurrency ${LOGIN_CONCURRENCY}`,
        'logins/s',
        median(loginDirect),
        median(loginThrough),
        undefined,
        'through passgate: TLS to passgate, USER/PASS (credential cache hit), then passgate\'s own TLS + AUTH XOAUTH2 to Dovecot',
      ),
    ];
    const json = {
      scenario: 'pop3-throughput',
      machine: machine(),
      command: invocation('bench/run.ts'),
      parameters: { messages, messageBytes: deliveredBytes / messages, retrBytes, rounds, logins, loginConcurrency: LOGIN_CONCURRENCY },
      samples: { retrDirect, retrThrough, retrCapacity, loginDirect, loginThrough },
      rows,
    };
    const markdown = [
      '## POP3: through passgate vs direct (Dovecot, TLS)',
      '',
      machineMarkdown(json.machine, json.command),
      `- ${messages} messages of ${fmt(deliveredBytes / messages / 1024)} KiB (${fmt(retrBytes / 1e6)} MB per pass); ${logins} warm logins`,
      '',
      comparisonTable(rows),
      '',
    ].join('\n');
    return { markdown, json };
  } finally {
    await world.close();
  }
}

if (import.meta.url === `file://${process.argv[1]}`) {
  const { markdown } = await runPop3Throughput();
  console.log(markdown);
}
