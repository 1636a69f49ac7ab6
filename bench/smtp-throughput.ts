/**
 * SMTP submission through passgate vs directly against the same Exchange-like upstream, in one run
 * (bench/fixture/bench-world.ts): BENCH_SMTP_MESSAGES (1,000) messages of 20 KB with 1, 4 and 16 concurrent
 * clients (one mailbox each), once with one connection per client and once with one connection per message (the
 * scanner pattern: connect, STARTTLS, AUTH, send, QUIT). Goal: throughput ratio >= 0.9; with the scanner pattern
 * passgate's upstream pool should put it ahead of direct (ratio > 1).
 *
 * The scanner pattern runs against two upstreams (bench/fixture/upstream-process.ts): one that greets a new
 * connection after smtp-server's 100 ms early-talker pause (its default; it stands for what a new connection to a
 * remote provider costs before it can be used), and one that greets at once (loopback with no connection cost: the
 * case least favourable to passgate). passgate itself greets at once (src/smtp/prompt-smtp-server.ts).
 *
 * A second scenario, smtp-wan, puts the upstream 10 ms away each way (bench/fixture/delay-proxy.ts), as Exchange
 * Online is from a site, with the client next to passgate: the same rows with BENCH_WAN_MESSAGES (100) and
 * BENCH_WAN_MESSAGES_PER_CONNECTION (60) messages, 1 and 4 clients.
 *
 * Clients are nodemailer transports over STARTTLS: direct with XOAUTH2 and an access token from the same OAuth
 * server, through passgate with AUTH PLAIN and an app password (warm credential cache after the first login).
 */
import { readFileSync } from 'node:fs';
import nodemailer from 'nodemailer';
import SMTPConnection from 'nodemailer/lib/smtp-connection';
import { startWorld, type PassgateProcess } from './fixture/bench-world.js';
import { compare, comparisonTable, envCount, pool, type Comparison } from './fixture/comparison.js';
import { fmt, invocation, machine, machineMarkdown } from './stats.js';

type Mode = 'connection per client' | 'connection per message';
/**
 * Which upstream (bench/fixture/upstream-process.ts): pauses 100 ms before greeting, greets at once, that one 10 ms
 * away, or a real Postfix (CHUNKING, so passgate sends BDAT) 10 ms away.
 */
type Upstream = 'pause' | 'prompt' | 'wan' | 'postfix-wan';
type Path = 'direct' | 'passgate';

function body(bytes: number): string {
  const line = `${'The quick brown fox jumps over the lazy dog 0123456789'.padEnd(76, '.')}\r\n`;
  return line.repeat(Math.ceil(bytes / line.length)).slice(0, bytes);
}

interface Plan {
  scenario: string;
  title: string;
  /** Rows: a mode against an upstream, with its message count and client counts. */
  /** `pipelining: false`: the clients do not pipeline (RFC 2920) even where offered, as many scanners' stacks. */
  rows: { mode: Mode; upstream: Upstream; messages: number; concurrencies: readonly number[]; pipelining?: boolean }[];
  lines: (counts: { delivered: number; oneWayMs: number; messageKiB: number }) => string[];
}

/**
 * nodemailer pipelines MAIL, RCPT and DATA wherever the server offers PIPELINING and has no option against it. A
 * transport created with `benchNoPipelining: true` forgets the offer right after EHLO (SMTPConnection#_actionEHLO,
 * nodemailer 7/8 internals: the bench's own patch, not passgate's).
 */
function allowClientsWithoutPipelining(): void {
  const proto = (SMTPConnection as unknown as { prototype: { _actionEHLO(this: { options: Record<string, unknown>; _supportedExtensions: string[] }, str: string): void } }).prototype;
  const ehlo = proto._actionEHLO;
  if (typeof ehlo !== 'function') throw new Error('nodemailer changed: SMTPConnection#_actionEHLO is gone (bench/smtp-throughput.ts)');
  if ((ehlo as { patched?: boolean }).patched) return;
  const patched = function (this: { options: Record<string, unknown>; _supportedExtensions: string[] }, str: string) {
    ehlo.call(this, str);
    if (this.options.benchNoPipelining) this._supportedExtensions = this._supportedExtensions.filter((e) => e !== 'PIPELINING');
  };
  proto._actionEHLO = Object.assign(patched, { patched: true });
}

async function runSmtp(plan: Plan): Promise<{ markdown: string; json: unknown }> {
  allowClientsWithoutPipelining();
  const world = await startWorld({ dovecot: false });
  try {
    const users = Array.from({ length: 16 }, (_, i) => `scanner${i}@bench.example`);
    const passwords = await world.createPasswords(users);
    const postfixPort = world.upstream.smtpPostfixWanPort;
    if (postfixPort === null && plan.rows.some((r) => r.upstream === 'postfix-wan')) console.warn('smtp: no Postfix (not installed, or not root): its rows are left out');
    const planned = plan.rows.filter((r) => r.upstream !== 'postfix-wan' || postfixPort !== null);
    const upstreams = [...new Set(planned.map((r) => r.upstream))];
    const upstreamPort: Record<Upstream, number> = { pause: world.upstream.smtpPort, prompt: world.upstream.smtpPromptPort, wan: world.upstream.smtpWanPort, 'postfix-wan': postfixPort ?? 0 };
    const oneWayMs = world.upstream.wanOneWayMs;
    const label: Record<Upstream, string> = {
      pause: 'upstream greets after 100 ms',
      prompt: 'upstream greets at once',
      wan: `upstream ${oneWayMs} ms away`,
      'postfix-wan': `Postfix (CHUNKING) ${oneWayMs} ms away`,
    };
    /** The DelayProxy in front of an upstream, whose round trips are counted; none for the loopback ones. */
    const proxy: Partial<Record<Upstream, 'wan' | 'postfixWan'>> = { wan: 'wan', 'postfix-wan': 'postfixWan' };
    // One passgate per upstream, the same config otherwise.
    const upstreamBase = { host: '127.0.0.1', tls: 'starttls', ca_file: world.upstreamCaFile, servername: 'upstream.test' };
    const passgates = new Map<Upstream, PassgateProcess>();
    for (const u of upstreams) passgates.set(u, await world.startPassgate({ smtp: { upstream: { ...upstreamBase, port: upstreamPort[u] } } }));
    const through = (u: Upstream) => passgates.get(u)!;
    const token = await world.token();
    const upstreamCa = readFileSync(world.upstreamCaFile, 'utf8');
    const passgateCa = readFileSync(world.passgateCaFile, 'utf8');
    const text = body(20 * 1024);

    const transport = (path: Path, upstream: Upstream, user: string, pooled: boolean, pipelining: boolean) =>
      nodemailer.createTransport({
        ...(pipelining ? {} : { benchNoPipelining: true }),
        host: '127.0.0.1',
        port: path === 'direct' ? upstreamPort[upstream] : through(upstream).ports.smtp.submission!,
        secure: false,
        requireTLS: true,
        tls: { ca: path === 'direct' ? upstreamCa : passgateCa, servername: path === 'direct' ? 'upstream.test' : 'passgate.test' },
        auth: path === 'direct' ? { type: 'OAuth2', user, accessToken: token } : { user, pass: passwords.get(user)! },
        ...(pooled ? { pool: true, maxConnections: 1, maxMessages: Number.POSITIVE_INFINITY } : {}),
      });

    /** passgate's CPU time (ms) spent in the runs through it, per row. */
    let passgateCpu = 0;
    /** Round trips to the provider (its DelayProxy) per path, per row. */
    let roundTrips = { direct: 0, passgate: 0 };
    const run = async (path: Path, upstream: Upstream, mode: Mode, concurrency: number, n: number, pipelining = true) => {
      const cpu = through(upstream).cpuMs();
      const counter = proxy[upstream];
      const trips = counter ? (await world.upstream.roundTrips())[counter] : 0;
      const rate = await runOnce(path, upstream, mode, concurrency, n, pipelining);
      if (path === 'passgate') passgateCpu += through(upstream).cpuMs() - cpu;
      if (counter) roundTrips[path] += (await world.upstream.roundTrips())[counter] - trips;
      return rate;
    };
    const runOnce = async (path: Path, upstream: Upstream, mode: Mode, concurrency: number, n: number, pipelining: boolean) => {
      const pooled = mode === 'connection per client';
      const transports = users.slice(0, concurrency).map((user) => ({ user, t: transport(path, upstream, user, pooled, pipelining) }));
      const wall = await pool(n, concurrency, async (_i, w) => {
        const client = transports[w]!; // each worker is one client with its own mailbox
        await client.t.sendMail({ from: client.user, to: 'someone@elsewhere.example', subject: 'bench', text });
      });
      for (const { t } of transports) t.close();
      return (n / wall) * 1000;
    };

    const before = await world.upstream.deliveries();
    // Warm-up: credential cache, JIT, the upstream pool's first connections (each upstream).
    let sent = 0;
    for (const upstream of upstreams) {
      for (const path of ['direct', 'passgate'] as const) await run(path, upstream, 'connection per client', 16, 64);
      sent += 128;
    }
    const rows: Comparison[] = [];
    const samples: Record<string, { direct: number; passgate: number; passgateCpuMs: number; capacity: number; roundTripsPerMessage?: { direct: number; passgate: number } }> = {};
    for (const { mode, upstream, messages, concurrencies, pipelining = true } of planned) {
      for (const concurrency of concurrencies) {
        // Interleaved halves (direct, passgate, passgate, direct) so a drift of the machine touches both alike.
        const half = Math.ceil(messages / 2);
        passgateCpu = 0;
        roundTrips = { direct: 0, passgate: 0 };
        const d1 = await run('direct', upstream, mode, concurrency, half, pipelining);
        const p1 = await run('passgate', upstream, mode, concurrency, half, pipelining);
        const p2 = await run('passgate', upstream, mode, concurrency, messages - half, pipelining);
        const d2 = await run('direct', upstream, mode, concurrency, messages - half, pipelining);
        sent += 2 * messages;
        const direct = (d1 + d2) / 2;
        const via = (p1 + p2) / 2;
        const capacity = (messages / passgateCpu) * 1000;
        const clients = `${concurrency} client${concurrency > 1 ? 's' : ''}${pipelining ? '' : ' without PIPELINING'}`;
        const what = `${mode}, ${clients}, ${label[upstream]}`;
        const perMessage = proxy[upstream] ? { direct: roundTrips.direct / messages, passgate: roundTrips.passgate / messages } : undefined;
        samples[what] = { direct, passgate: via, passgateCpuMs: passgateCpu, capacity, ...(perMessage ? { roundTripsPerMessage: perMessage } : {}) };
        const goal = mode === 'connection per message' ? { atLeast: 1 } : { atLeast: 0.9 };
        const trips = perMessage ? `; round trips to the provider per message: direct ${fmt(perMessage.direct)}, through passgate ${fmt(perMessage.passgate)}` : '';
        const note = `passgate used ${fmt(passgateCpu / messages)} ms CPU per message: ${fmt(capacity)} msg/s with a core of its own${trips}`;
        rows.push(compare(what, 'msg/s', direct, via, goal, note));
      }
    }
    // Postfix's count comes from its log, written a moment after its reply: asked again for up to 5 s.
    let delivered = (await world.upstream.deliveries()) - before;
    for (const deadline = Date.now() + 5000; delivered !== sent && Date.now() < deadline; delivered = (await world.upstream.deliveries()) - before) {
      await new Promise((r) => setTimeout(r, 100));
    }
    if (delivered !== sent) throw new Error(`the upstream accepted ${delivered} messages, ${sent} were sent`);
    const json = { scenario: plan.scenario, machine: machine(), command: invocation('bench/run.ts'), parameters: { rows: planned, messageBytes: text.length, wanOneWayMs: oneWayMs }, samples, rows, delivered };
    const markdown = [
      `## ${plan.title}`,
      '',
      machineMarkdown(json.machine, json.command),
      ...plan.lines({ delivered, oneWayMs, messageKiB: text.length / 1024 }),
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

export function runSmtpThroughput(): Promise<{ markdown: string; json: unknown }> {
  const perClient = envCount('BENCH_SMTP_MESSAGES', 1000);
  // Directly against the pausing upstream a new connection per message waits ~100 ms before the greeting, so one
  // client manages ~9 messages a second: fewer messages keep the scenario under 2 minutes.
  const perMessage = envCount('BENCH_SMTP_MESSAGES_PER_CONNECTION', 250);
  const all = [1, 4, 16];
  return runSmtp({
    scenario: 'smtp-throughput',
    title: 'SMTP submission: through passgate vs direct (STARTTLS both ways)',
    // A connection per client against the pausing upstream (the pause is paid once per connection either way);
    // a connection per message against both loopback upstreams.
    rows: [
      { mode: 'connection per client', upstream: 'pause', messages: perClient, concurrencies: all },
      { mode: 'connection per message', upstream: 'pause', messages: perMessage, concurrencies: all },
      { mode: 'connection per message', upstream: 'prompt', messages: perMessage, concurrencies: all },
    ],
    lines: ({ delivered, messageKiB }) => [
      `- ${perClient} messages of ${fmt(messageKiB)} KiB per row and path with a connection per client, ${perMessage} with a connection per message; every one accepted upstream (${delivered} in all, checked)`,
      "- A connection per message runs against two upstreams: one that greets a new connection after smtp-server's 100 ms early-talker pause (what a new connection to a remote provider costs before use, here as a fixed wait), and one that greets at once (no connection cost: least favourable to passgate). passgate greets at once.",
    ],
  });
}

export function runSmtpWan(): Promise<{ markdown: string; json: unknown }> {
  const perClient = envCount('BENCH_WAN_MESSAGES', 100);
  const perMessage = envCount('BENCH_WAN_MESSAGES_PER_CONNECTION', 60);
  return runSmtp({
    scenario: 'smtp-wan',
    title: 'SMTP submission with the upstream across a WAN: through passgate vs direct',
    rows: [
      { mode: 'connection per client', upstream: 'wan', messages: perClient, concurrencies: [1, 4] },
      { mode: 'connection per message', upstream: 'wan', messages: perMessage, concurrencies: [1, 4] },
      // Issue 22: an upstream offering CHUNKING, as Exchange Online does (passgate sends BDAT), with clients that
      // pipeline and clients that do not.
      { mode: 'connection per client', upstream: 'postfix-wan', messages: perClient, concurrencies: [1, 4] },
      { mode: 'connection per client', upstream: 'postfix-wan', messages: perClient, concurrencies: [1], pipelining: false },
      { mode: 'connection per client', upstream: 'wan', messages: perClient, concurrencies: [1], pipelining: false },
    ],
    lines: ({ delivered, oneWayMs, messageKiB }) => [
      `- Round trips per message are counted at that proxy (bench/fixture/delay-proxy.ts: each time the provider answered after its client spoke), connection setup included. The Postfix rows: a real Postfix (test/helpers/postfix-server.ts) offering CHUNKING and PIPELINING, XOAUTH2 through Dovecot SASL, behind the same delay; "without PIPELINING": nodemailer told to ignore the offer, direct and through passgate alike.`,
      `- The upstream (the greet-at-once server) sits behind a proxy that holds every chunk ${oneWayMs} ms each way (${2 * oneWayMs} ms round trip, bench/fixture/delay-proxy.ts), as a provider does from a site; the clients reach passgate on loopback, as a scanner reaches a gateway on its LAN. Direct clients cross the same delay.`,
      `- ${perClient} messages of ${fmt(messageKiB)} KiB per row and path with a connection per client, ${perMessage} with a connection per message; every one accepted upstream (${delivered} in all, checked)`,
    ],
  });
}

if (import.meta.url === `file://${process.argv[1]}`) {
  const { markdown } = await runSmtpThroughput();
  console.log(markdown);
}
