/**
 * IMAP through passgate vs directly against the same Dovecot, in one run (bench/fixture/bench-world.ts):
 *
 * - bulk FETCH of BENCH_FETCH_MESSAGES (2,000) × 50 KB over TLS: throughput ratio, goal >= 0.95;
 * - login + LOGOUT rate at concurrency 8, warm (credential cache) and cold (argon2 every login): warm goal >= 0.8,
 *   cold shown next to what argon2 alone allows;
 * - NOOP round trip after login: the latency passgate adds, p50 and p99.
 *
 * Direct logins use AUTHENTICATE XOAUTH2 with a token from the same OAuth server; through passgate, LOGIN with an
 * app password over implicit TLS. The client is a minimal wire client (fixture/imap-wire-client.ts).
 */
import { readFileSync } from 'node:fs';
import { performance } from 'node:perf_hooks';
import { derivePepperKeys } from '../src/core/pepper-keys.js';
import { Argon2PasswordHasher } from '../src/credentials/argon2-password-hasher.js';
import { startWorld } from './fixture/bench-world.js';
import { compare, comparisonTable, envCount, median, pool, type Comparison } from './fixture/comparison.js';
import { ImapWire, quoted, xoauth2 } from './fixture/imap-wire-client.js';
import { fmt, machine, machineMarkdown, invocation, summarize } from './stats.js';

const LOGIN_CONCURRENCY = 8;

function message(i: number, bytes: number): Buffer {
  const head = `From: sender@bench.example\r\nTo: reader0@bench.example\r\nSubject: bench message ${i}\r\nMessage-ID: <bench-${i}@bench.example>\r\nDate: Sun, 22 Nov 2026 08:00:00 +0000\r\n\r\n`;
  const line = `${'abcdefghijklmnopqrstuvwxyz0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZ'.repeat(1)}0123456789\r\n`; // 74 bytes
  const body = line.repeat(Math.ceil((bytes - head.length) / line.length));
  return Buffer.from(head + body);
}

export async function runImapThroughput(): Promise<{ markdown: string; json: unknown }> {
  const fetchMessages = envCount('BENCH_FETCH_MESSAGES', 2000);
  const fetchRounds = envCount('BENCH_FETCH_ROUNDS', 3);
  const warmLogins = envCount('BENCH_IMAP_LOGINS_WARM', 400);
  const coldLogins = envCount('BENCH_IMAP_LOGINS_COLD', 160);
  const noops = envCount('BENCH_NOOPS', 1000);
  const world = await startWorld({ dovecot: true });
  try {
    const users = Array.from({ length: LOGIN_CONCURRENCY }, (_, i) => `reader${i}@bench.example`);
    const passwords = await world.createPasswords(users);
    const warm = await world.startPassgate();
    const cold = await world.startPassgate({ auth: { cache_ttl_seconds: 0 } });
    const token = await world.token();
    const dovecotCa = readFileSync(world.dovecotCaFile!, 'utf8');
    const passgateCa = readFileSync(world.passgateCaFile, 'utf8');
    const direct = async (user: string) => {
      const c = await ImapWire.connect({ port: world.dovecot!.imapsPort, ca: dovecotCa, servername: 'localhost' });
      await c.command(`AUTHENTICATE XOAUTH2 ${xoauth2(user, token)}`);
      return c;
    };
    const through = (port: number) => async (user: string) => {
      const c = await ImapWire.connect({ port, ca: passgateCa, servername: 'passgate.test' });
      await c.command(`LOGIN ${quoted(user)} ${quoted(passwords.get(user)!)}`);
      return c;
    };
    const viaWarm = through(warm.ports.imap.imaps!);
    const viaCold = through(cold.ports.imap.imaps!);

    // ---- bulk FETCH
    const reader = users[0]!;
    let deliveredBytes = 0;
    for (let i = 0; i < fetchMessages; i++) {
      const m = message(i, 50 * 1024);
      deliveredBytes += m.length;
      await world.dovecot!.deliver(reader, m);
    }
    const fetchOnce = async (open: (user: string) => Promise<ImapWire>) => {
      const c = await open(reader);
      try {
        await c.command('SELECT INBOX');
        const cpu = warm.cpuMs();
        const start = performance.now();
        const { bytes } = await c.command('UID FETCH 1:* BODY.PEEK[]');
        const ms = performance.now() - start;
        const passgateCpuMs = warm.cpuMs() - cpu;
        await c.command('LOGOUT');
        return { mbps: bytes / 1e6 / (ms / 1000), bytes, ms, passgateCpuMs };
      } finally {
        c.close();
      }
    };
    await fetchOnce(direct); // Dovecot indexes the new mail on the first SELECT: not measured
    await fetchOnce(viaWarm);
    const fetchDirect: number[] = [];
    const fetchThrough: number[] = [];
    /** MB passgate relays per second of its own CPU time: its throughput with a core to itself. */
    const fetchCapacity: number[] = [];
    let fetchedBytes = 0;
    for (let r = 0; r < fetchRounds; r++) {
      // Alternate which goes first, so a drift of the machine touches both alike.
      const order = r % 2 ? [viaWarm, direct] : [direct, viaWarm];
      for (const open of order) {
        const result = await fetchOnce(open);
        fetchedBytes = result.bytes;
        (open === direct ? fetchDirect : fetchThrough).push(result.mbps);
        if (open !== direct) fetchCapacity.push(result.bytes / 1e6 / (result.passgateCpuMs / 1000));
      }
    }

    // ---- login + LOGOUT rate
    const loginRate = async (open: (user: string) => Promise<ImapWire>, n: number) => {
      const wall = await pool(n, LOGIN_CONCURRENCY, async (i) => {
        const c = await open(users[i % users.length]!);
        await c.command('LOGOUT');
        c.close();
      });
      return (n / wall) * 1000;
    };
    for (const user of users) (await viaWarm(user)).close(); // prime the credential cache
    await loginRate(direct, 40);
    await loginRate(viaWarm, 40);
    const warmDirect: number[] = [];
    const warmThrough: number[] = [];
    for (let r = 0; r < 4; r++) {
      const order = r % 2 ? ['through', 'direct'] : ['direct', 'through'];
      for (const which of order) {
        const rate = await loginRate(which === 'direct' ? direct : viaWarm, Math.ceil(warmLogins / 4));
        (which === 'direct' ? warmDirect : warmThrough).push(rate);
      }
    }
    const coldThrough = await loginRate(viaCold, coldLogins);
    const coldDirect = median(warmDirect);
    // What argon2 alone allows with passgate's bound (one verification per core at a time).
    const hasher = new Argon2PasswordHasher({ memoryKib: 19456, timeCost: 2, parallelism: 1 }, derivePepperKeys('bench-pepper-0123456789abcdef-not-a-secret').hashSecret);
    const stored = await hasher.hash('bench-password-value');
    const argonSamples: number[] = [];
    for (let i = 0; i < 30; i++) {
      const t = performance.now();
      await hasher.verify(stored, 'bench-password-value');
      argonSamples.push(performance.now() - t);
    }
    const argonMs = summarize(argonSamples).p50;
    const cores = machine().cores;
    const argonBound = (1000 / argonMs) * cores;

    // ---- NOOP round trip
    const noopRtt = async (open: (user: string) => Promise<ImapWire>) => {
      const c = await open(users[1]!);
      const samples: number[] = [];
      for (let i = 0; i < 50 + noops; i++) {
        const t = performance.now();
        await c.command('NOOP');
        if (i >= 50) samples.push(performance.now() - t);
      }
      await c.command('LOGOUT');
      c.close();
      return summarize(samples);
    };
    const noopDirect = await noopRtt(direct);
    const noopThrough = await noopRtt(viaWarm);

    const rows: Comparison[] = [
      compare(`bulk FETCH ${fetchMessages} × 50 KB (median of ${fetchRounds})`, 'MB/s', median(fetchDirect), median(fetchThrough), { atLeast: 0.95 }, 'client, passgate and Dovecot share the cores'),
      compare(
        'bulk FETCH: passgate with a core of its own (MB per CPU-second of passgate)',
        'MB/s',
        median(fetchDirect),
        median(fetchCapacity),
        { atLeast: 0.95 },
        'bytes relayed / passgate CPU time during the FETCH',
      ),
      compare(`login + LOGOUT, warm, concurrency ${LOGIN_CONCURRENCY}`, 'logins/s', median(warmDirect), median(warmThrough), { atLeast: 0.8 }, 'credential cache hit'),
      compare(
        `login + LOGOUT, cold, concurrency ${LOGIN_CONCURRENCY}`,
        'logins/s',
        coldDirect,
        coldThrough,
        undefined,
        `argon2 every login; argon2 alone allows ${fmt(argonBound)}/s (${fmt(argonMs)} ms × ${cores} cores)`,
      ),
      compare('NOOP round trip p50 (lower is better)', 'ms', noopDirect.p50, noopThrough.p50, undefined, `passgate adds ${fmt(noopThrough.p50 - noopDirect.p50)} ms`),
      compare('NOOP round trip p99 (lower is better)', 'ms', noopDirect.p99, noopThrough.p99, undefined, `passgate adds ${fmt(noopThrough.p99 - noopDirect.p99)} ms`),
    ];
    const json = {
      scenario: 'imap-throughput',
      machine: machine(),
      command: invocation('bench/run.ts'),
      parameters: { fetchMessages, messageBytes: deliveredBytes / fetchMessages, fetchedBytes, fetchRounds, warmLogins, coldLogins, loginConcurrency: LOGIN_CONCURRENCY, noops },
      samples: { fetchDirect, fetchThrough, fetchCapacity, warmDirect, warmThrough, coldThrough, argonMs, noopDirect, noopThrough },
      rows,
    };
    const markdown = [
      '## IMAP: through passgate vs direct (Dovecot, TLS)',
      '',
      machineMarkdown(json.machine, json.command),
      `- ${fetchMessages} messages of ${fmt(deliveredBytes / fetchMessages / 1024)} KiB (${fmt(fetchedBytes / 1e6)} MB per FETCH); ${warmLogins} warm and ${coldLogins} cold logins; ${noops} NOOPs`,
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
  const { markdown } = await runImapThroughput();
  console.log(markdown);
}

