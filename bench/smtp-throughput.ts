/**
 * SMTP submission through passgate vs directly against the same Exchange-like upstream, in one run
 * (bench/fixture/bench-world.ts): BENCH_SMTP_MESSAGES (1,000) messages of 20 KB with 1, 4 and 16 concurrent
 * clients (one mailbox each), once with one connection per client and once with one connection per message (the
 * scanner pattern: connect, STARTTLS, AUTH, send, QUIT). Goal: throughput ratio >= 0.9; with the scanner pattern
 * passgate's upstream pool should put it ahead of direct (ratio > 1).
 *
 * Clients are nodemailer transports over STARTTLS: direct with XOAUTH2 and an access token from the same OAuth
 * server, through passgate with AUTH PLAIN and an app password (warm credential cache after the first login).
 */
import { readFileSync } from 'node:fs';
import nodemailer from 'nodemailer';
import { startWorld } from './fixture/bench-world.js';
import { compare, comparisonTable, envCount, pool, type Comparison } from './fixture/comparison.js';
import { fmt, invocation, machine, machineMarkdown } from './stats.js';

const CONCURRENCIES = [1, 4, 16] as const;
const MODES = ['connection per client', 'connection per message'] as const;
type Mode = (typeof MODES)[number];

function body(bytes: number): string {
  const line = `${'The quick brown fox jumps over the lazy dog 0123456789'.padEnd(76, '.')}\r\n`;
  return line.repeat(Math.ceil(bytes / line.length)).slice(0, bytes);
}

export async function runSmtpThroughput(): Promise<{ markdown: string; json: unknown }> {
  const perClient = envCount('BENCH_SMTP_MESSAGES', 1000);
  // A new connection per message costs ~100 ms of smtp-server's early-talker pause before each greeting (upstream
  // and passgate alike), so one client manages ~9 messages a second: fewer messages keep the row near 2 minutes.
  const perMessage = envCount('BENCH_SMTP_MESSAGES_PER_CONNECTION', 250);
  const world = await startWorld({ dovecot: false });
  try {
    const users = Array.from({ length: 16 }, (_, i) => `scanner${i}@bench.example`);
    const passwords = await world.createPasswords(users);
    const passgate = await world.startPassgate();
    const token = await world.token();
    const upstreamCa = readFileSync(world.upstreamCaFile, 'utf8');
    const passgateCa = readFileSync(world.passgateCaFile, 'utf8');
    const text = body(20 * 1024);

    type Path = 'direct' | 'passgate';
    const transport = (path: Path, user: string, pooled: boolean) =>
      nodemailer.createTransport({
        host: '127.0.0.1',
        port: path === 'direct' ? world.upstream.smtpPort : passgate.ports.smtp.submission!,
        secure: false,
        requireTLS: true,
        tls: { ca: path === 'direct' ? upstreamCa : passgateCa, servername: path === 'direct' ? 'upstream.test' : 'passgate.test' },
        auth: path === 'direct' ? { type: 'OAuth2', user, accessToken: token } : { user, pass: passwords.get(user)! },
        ...(pooled ? { pool: true, maxConnections: 1, maxMessages: Number.POSITIVE_INFINITY } : {}),
      });

    /** passgate's CPU time (ms) spent in the runs through it, per row. */
    let passgateCpu = 0;
    const run = async (path: Path, mode: Mode, concurrency: number, n: number) => {
      const cpu = passgate.cpuMs();
      const rate = await runOnce(path, mode, concurrency, n);
      if (path === 'passgate') passgateCpu += passgate.cpuMs() - cpu;
      return rate;
    };
    const runOnce = async (path: Path, mode: Mode, concurrency: number, n: number) => {
      const pooled = mode === 'connection per client';
      const transports = users.slice(0, concurrency).map((user) => ({ user, t: transport(path, user, pooled) }));
      const wall = await pool(n, concurrency, async (_i, w) => {
        const client = transports[w]!; // each worker is one client with its own mailbox
        await client.t.sendMail({ from: client.user, to: 'someone@elsewhere.example', subject: 'bench', text });
      });
      for (const { t } of transports) t.close();
      return (n / wall) * 1000;
    };

    const before = await world.upstream.deliveries();
    // Warm-up: credential cache, JIT, the upstream pool's first connections.
    for (const path of ['direct', 'passgate'] as const) await run(path, 'connection per client', 16, 64);
    const rows: Comparison[] = [];
    const samples: Record<string, { direct: number; passgate: number; passgateCpuMs: number; capacity: number }> = {};
    let sent = 128;
    for (const mode of MODES) {
      const messages = mode === 'connection per client' ? perClient : perMessage;
      for (const concurrency of CONCURRENCIES) {
        // Interleaved halves (direct, passgate, passgate, direct) so a drift of the machine touches both alike.
        const half = Math.ceil(messages / 2);
        passgateCpu = 0;
        const d1 = await run('direct', mode, concurrency, half);
        const p1 = await run('passgate', mode, concurrency, half);
        const p2 = await run('passgate', mode, concurrency, messages - half);
        const d2 = await run('direct', mode, concurrency, messages - half);
        sent += 2 * messages;
        const direct = (d1 + d2) / 2;
        const through = (p1 + p2) / 2;
        const capacity = (messages / passgateCpu) * 1000;
        samples[`${mode}, ${concurrency}`] = { direct, passgate: through, passgateCpuMs: passgateCpu, capacity };
        const goal = mode === 'connection per message' ? { atLeast: 1 } : { atLeast: 0.9 };
        const note = `passgate used ${fmt(passgateCpu / messages)} ms CPU per message: ${fmt(capacity)} msg/s with a core of its own`;
        rows.push(compare(`${mode}, ${concurrency} client${concurrency > 1 ? 's' : ''}`, 'msg/s', direct, through, goal, note));
      }
    }
    const delivered = (await world.upstream.deliveries()) - before;
    if (delivered !== sent) throw new Error(`the upstream accepted ${delivered} messages, ${sent} were sent`);
    const json = { scenario: 'smtp-throughput', machine: machine(), command: invocation('bench/run.ts'), parameters: { perClient, perMessage, messageBytes: text.length }, samples, rows, delivered };
    const markdown = [
      '## SMTP submission: through passgate vs direct (STARTTLS both ways)',
      '',
      machineMarkdown(json.machine, json.command),
      `- ${perClient} messages of ${fmt(text.length / 1024)} KiB per row and path with a connection per client, ${perMessage} with a connection per message; every one accepted upstream (${delivered} in all, checked)`,
      '- Goal: ratio >= 0.9 with one connection per client; > 1 with one connection per message (upstream pooling)',
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
  const { markdown } = await runSmtpThroughput();
  console.log(markdown);
}
