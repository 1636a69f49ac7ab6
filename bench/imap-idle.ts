/**
 * Idle IMAP sessions: BENCH_IDLE_SESSIONS (10,000, or as many as this machine's open-file limit lets one process
 * hold: each session through passgate is two sockets in passgate's process) concurrent sessions in IDLE, opened
 * directly against Dovecot and then through one passgate process, one set after the other. Reports passgate's RSS
 * per session (goal below 64 KB), the time to open them all (direct and through), that a new message reaches
 * every session (one delivery per mailbox; sessions are spread over BENCH_IDLE_MAILBOXES mailboxes), and, in the
 * same run, what a bare Node TLS-to-TLS pipe costs per pipe (the floor under passgate's number; its own process,
 * measured while the world starts). Both RSS figures are read the same way: SETTLE_MS after the last connection
 * opened, no forced GC. The JSON has each phase's wall time and the CPU each process spent per session opened.
 *
 * Both listeners (passgate's and Dovecot's) serve ECDSA P-256 certificates: an RSA-2048 signature costs 0.7 ms of
 * CPU per handshake here (`openssl speed`), ECDSA P-256 0.03 ms, on both paths alike; RSA would measure the key
 * type rather than passgate. (passgate's own self-signed default stays RSA, for old clients.)
 */
import { execFileSync } from 'node:child_process';
import { readdirSync, readFileSync } from 'node:fs';
import { performance } from 'node:perf_hooks';
import { startWorld } from './fixture/bench-world.js';
import { compare, comparisonTable, envCount, pool, type Comparison } from './fixture/comparison.js';
import { ImapWire, quoted, xoauth2 } from './fixture/imap-wire-client.js';
import { SETTLE_MS, tlsPipeFloor, type MemoryKb } from './fixture/tls-pipe-floor.js';
import { sharedPlacement } from './fixture/cpu-placement.js';
import { fmt, invocation, machine, machineMarkdown } from './stats.js';

/** Sessions being opened at once (each is a TLS handshake, a login, SELECT and IDLE, mostly waiting on Dovecot). */
const OPEN_CONCURRENCY = envCount('BENCH_IDLE_CONCURRENCY', 128);

function openFileLimit(): number {
  return Number(execFileSync('sh', ['-c', 'ulimit -n'], { encoding: 'utf8' }).trim()) || 1024;
}

/** CPU time (user + system, ms) of the processes /proc lists whose stat line passes `match` (fields after the name). */
function cpuMsOf(match: (pid: number, fields: string[]) => boolean): number {
  let ticks = 0;
  for (const entry of readdirSync('/proc')) {
    const pid = Number(entry);
    if (!Number.isInteger(pid)) continue;
    let stat: string;
    try {
      stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
    } catch {
      continue; // gone meanwhile
    }
    const fields = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
    if (match(pid, fields)) ticks += Number(fields[11]) + Number(fields[12]);
  }
  return ticks * 10; // USER_HZ = 100
}

/**
 * Connections on 127.0.0.1:`port` still open on the server's side (anything but LISTEN and TIME_WAIT, which is
 * the closing client's), from /proc/net/tcp: a round's sessions are gone from Dovecot's count once this is 0.
 */
function serverSideConnections(port: number): number {
  const hexPort = `:${port.toString(16).toUpperCase().padStart(4, '0')} `;
  let n = 0;
  for (const line of readFileSync('/proc/net/tcp', 'utf8').split('\n')) {
    // "  sl  local_address rem_address   st ...": local is "0100007F:PORT", st is hex (06 TIME_WAIT, 0A LISTEN).
    const local = line.indexOf(hexPort);
    if (local < 0 || local > 20) continue;
    const st = line.slice(local + 20, local + 22);
    if (st !== '06' && st !== '0A') n++;
  }
  return n;
}

export async function runImapIdle(): Promise<{ markdown: string; json: unknown }> {
  // Where the scenario's wall time goes, phase by phase (in the JSON, and on stderr as it runs).
  const phases: Record<string, number> = {};
  let mark = performance.now();
  const phase = (name: string) => {
    const now = performance.now();
    phases[name] = Math.round(now - mark);
    mark = now;
    console.error(`imap-idle: ${name} ${(phases[name] / 1000).toFixed(1)} s`);
  };
  const limit = openFileLimit();
  // passgate holds a client and an upstream socket per session, plus its own few dozen descriptors.
  const fit = Math.floor((limit - 256) / 2);
  const requested = envCount('BENCH_IDLE_SESSIONS', 10_000);
  const sessions = Math.min(requested, fit);
  const mailboxes = envCount('BENCH_IDLE_MAILBOXES', 100);
  const perMailbox = Math.ceil(sessions / mailboxes);
  // Dovecot: TLS is terminated in imap-login, which stays in the path; both it and imap serve many clients per
  // process here (the defaults are one process per connection, capped at 100). Sessions in IDLE learn of new mail
  // from the helper's 1-second mailbox_idle_check_interval: with 30 s the last session was told after ~30 s
  // (3,000 sessions), so it stays, though its polling costs Dovecot CPU for every session already idle.
  const dovecotConfig = `
mail_max_userip_connections = ${perMailbox + 10}
default_process_limit = 200
default_client_limit = 4000
# Many clients per process need more than the 256 MB address-space default.
default_vsz_limit = 4G
service imap-login {
  service_count = 0
  client_limit = 2500
  process_min_avail = 4
}
service imap {
  service_count = 0
  client_limit = 250
  process_limit = 100
}
service anvil {
  client_limit = 20000
}
service auth {
  client_limit = 20000
}
`;
  // The floor: what a bare Node process spends on an idle TLS-to-TLS pipe (no IMAP, no passgate), same run,
  // memory read the same way. It runs in its own process while the world starts and passgate warms up (neither
  // is measured; the floor's memory does not depend on their CPU), and is done before the first round opens.
  // Per pipe it hardly depends on the count (67-71 KiB from 2,000 to 9,872 pipes here), so
  // BENCH_IDLE_FLOOR_PIPES (2,000) keeps the scenario's time down.
  const floorPipes = Math.min(sessions, envCount('BENCH_IDLE_FLOOR_PIPES', 2000));
  const floorRun = tlsPipeFloor(floorPipes, { keyType: 'ecdsa', concurrency: OPEN_CONCURRENCY });
  floorRun.catch(() => {}); // awaited below; a failure before then must not go unhandled
  // Every core for every process: here the endpoints (Dovecot, the clients, the OAuth server) are what limits the
  // opening rate, and the question is passgate's memory; split placement would starve them and slow the scenario.
  const placement = sharedPlacement('the endpoints limit this scenario');
  const world = await startWorld({ dovecot: true, dovecotConfig, keyType: 'ecdsa', placement });
  try {
    const users = Array.from({ length: mailboxes }, (_, i) => `idle${i}@bench.example`);
    const passwords = await world.createPasswords(users);
    // All sessions come from 127.0.0.1: lift the per-address cap (50 by default) for this one.
    const passgate = await world.startPassgate({ imap: { max_connections: sessions + 100, max_connections_per_ip: sessions + 100 } });
    const token = await world.token();
    const dovecotCa = readFileSync(world.dovecotCaFile!, 'utf8');
    const passgateCa = readFileSync(world.passgateCaFile, 'utf8');
    for (const user of users) await world.dovecot!.deliver(user, Buffer.from(`Subject: first\r\n\r\nhello\r\n`));
    phase('start');

    /** passgate's memory now: RSS from /proc, heap and external from its own metrics (prom-client's defaults). */
    const passgateMemory = async (): Promise<MemoryKb> => {
      const text = await (await fetch(`http://127.0.0.1:${passgate.ports.ops}/metrics`)).text();
      const metric = (name: string) => Number(new RegExp(`^${name}(?:\\{[^}]*\\})? (\\S+)`, 'm').exec(text)?.[1] ?? Number.NaN) / 1024;
      return { rss: passgate.rssKb(), heapUsed: metric('passgate_nodejs_heap_size_used_bytes'), external: metric('passgate_nodejs_external_memory_bytes') };
    };
    const dovecotPgid = world.dovecot!.pid!;
    const cpu = () => ({
      bench: (process.cpuUsage().user + process.cpuUsage().system) / 1000,
      passgate: passgate.cpuMs(),
      dovecot: cpuMsOf((_, f) => Number(f[2]) === dovecotPgid),
      // The upstream process (OAuth server: Dovecot's token introspection) is this process's other Node child.
      upstream: cpuMsOf((pid, f) => Number(f[1]) === process.pid && pid !== passgate.pid),
    });

    type Path = 'direct' | 'passgate';
    const openOne = async (path: Path, user: string): Promise<ImapWire> => {
      try {
        return await openSession(path, user);
      } catch (error) {
        const log = (await world.dovecot!.log()).split('\n').filter((l) => /error|fatal|warn/i.test(l)).slice(-5).join('\n');
        throw new Error(`opening a session ${path === 'direct' ? 'directly' : 'through passgate'} for ${user}: ${(error as Error).message}\nDovecot's last errors:\n${log}`, { cause: error });
      }
    };
    const openSession = async (path: Path, user: string): Promise<ImapWire> => {
      const c =
        path === 'direct'
          ? await ImapWire.connect({ port: world.dovecot!.imapsPort, ca: dovecotCa, servername: 'localhost', timeoutMs: 120_000 })
          : await ImapWire.connect({ port: passgate.ports.imap.imaps!, ca: passgateCa, servername: 'passgate.test', timeoutMs: 120_000 });
      if (path === 'direct') await c.command(`AUTHENTICATE XOAUTH2 ${xoauth2(user, token)}`);
      else await c.command(`LOGIN ${quoted(user)} ${quoted(passwords.get(user)!)}`);
      await c.command('SELECT INBOX');
      await c.idle();
      return c;
    };
    const waitFor = async (what: string, done: () => boolean, timeoutMs = 60_000) => {
      const deadline = Date.now() + timeoutMs;
      while (!done()) {
        if (Date.now() > deadline) throw new Error(`${what}: not within ${timeoutMs / 1000} s`);
        await new Promise((r) => setTimeout(r, 100));
      }
    };

    const round = async (path: Path, round: number) => {
      const clients: ImapWire[] = new Array(sessions);
      const cpuBefore = cpu();
      const openMs = await pool(sessions, OPEN_CONCURRENCY, async (i) => {
        clients[i] = await openOne(path, users[i % mailboxes]!);
      });
      const cpuAfter = cpu();
      // CPU per session opened, by process (ms): where the opening time goes.
      const openCpuMs = Object.fromEntries(Object.entries(cpuAfter).map(([k, v]) => [k, (v - cpuBefore[k as keyof typeof cpuBefore]) / sessions]));
      phase(`${path}: open`);
      let memory: MemoryKb | null = null;
      if (path === 'passgate') {
        // Measured as the floor is (tls-pipe-floor.ts): after the same settle time, no forced collection.
        await new Promise((r) => setTimeout(r, SETTLE_MS));
        memory = await passgateMemory();
        phase(`${path}: settle`);
      }
      // One new message per mailbox: every session of that mailbox must be told (`* n EXISTS`).
      const start = performance.now();
      const told = clients.map((c) => c.waitFor(/^\* \d+ EXISTS/, 60_000).then(() => true, () => false));
      for (const user of users) await world.dovecot!.deliver(user, Buffer.from(`Subject: round ${round}\r\n\r\nnew mail\r\n`));
      const results = await Promise.all(told);
      const notifyMs = performance.now() - start;
      const reached = results.filter(Boolean).length;
      phase(`${path}: notify`);
      for (const c of clients) c.close();
      // Dovecot counts connections per user and address: the next round starts once it has let all of these go.
      if (path === 'direct') {
        await waitFor('sessions closing on Dovecot', () => serverSideConnections(world.dovecot!.imapsPort) === 0);
        await new Promise((r) => setTimeout(r, 200));
        phase(`${path}: close`);
      }
      return { openMs, openCpuMs, memory, notifyMs, reached };
    };

    // Warm-up: JIT, the credential cache (one login per app password), Dovecot's processes.
    await pool(users.length, 8, async (i) => (await openOne('passgate', users[i]!)).close());
    await waitFor('warm-up sessions closing on Dovecot', () => serverSideConnections(world.dovecot!.imapsPort) === 0);
    await new Promise((r) => setTimeout(r, SETTLE_MS));
    const baseline = await passgateMemory();
    phase('warm-up');
    const floor = await floorRun;
    phase('floor (beside start and warm-up)');
    const direct = await round('direct', 1);
    const through = await round('passgate', 2);
    const loaded = through.memory!;
    const perSession = (key: keyof MemoryKb) => (loaded[key] - baseline[key]) / sessions;
    const perSessionKb = perSession('rss');
    const rows: Comparison[] = [
      compare(`open ${sessions} sessions (TLS, LOGIN, SELECT, IDLE), ${OPEN_CONCURRENCY} at a time`, 'sessions/s', (sessions / direct.openMs) * 1000, (sessions / through.openMs) * 1000),
      compare('a new message reaches every session (time until the last is told)', 's', direct.notifyMs / 1000, through.notifyMs / 1000, undefined, `direct ${direct.reached}/${sessions}, through ${through.reached}/${sessions} told`),
    ];
    const json = {
      scenario: 'imap-idle',
      machine: machine(placement),
      command: invocation('bench/run.ts'),
      parameters: { requested, sessions, openFileLimit: limit, mailboxes, openConcurrency: OPEN_CONCURRENCY, settleMs: SETTLE_MS, keyType: 'ecdsa' },
      passgate: { baseline, loaded, perSessionKb, perSessionHeapKb: perSession('heapUsed'), perSessionExternalKb: perSession('external') },
      nodeTlsPipeFloor: floor,
      direct,
      through,
      phasesMs: phases,
      rows,
    };
    const capped = sessions < requested ? ` (${requested} asked; this machine's open-file limit, ${limit} per process with no way to raise it, fits ${fit} sessions through one process: two sockets each)` : '';
    const cpuText = (c: Record<string, number>) => `${fmt(c.passgate!)} ms passgate, ${fmt(c.dovecot!)} ms Dovecot, ${fmt(c.upstream!)} ms OAuth server, ${fmt(c.bench!)} ms client`;
    const markdown = [
      '## IMAP IDLE: many idle sessions through one passgate process',
      '',
      machineMarkdown(json.machine, json.command),
      `- ${sessions} sessions${capped}, spread over ${mailboxes} mailboxes; TLS on both sides (ECDSA P-256 certificates on passgate's and Dovecot's listeners)`,
      `- passgate RSS: ${fmt(baseline.rss / 1024)} MiB before, ${fmt(loaded.rss / 1024)} MiB with ${sessions} sessions, each read ${SETTLE_MS / 1000} s after the last session opened or closed (no forced GC): **${fmt(perSessionKb)} KiB per session** (goal < 64 KB: ${perSessionKb * 1.024 < 64 ? 'met' : '**missed**'}), of which ${fmt(perSession('heapUsed'))} KiB V8 heap (garbage not yet collected included) and ${fmt(perSession('external'))} KiB external`,
      `- a bare Node TLS-to-TLS pipe (no IMAP, no passgate; ${floor.pipes} pipes, memory read the same way) costs **${fmt(floor.perPipeKb)} KiB per pipe**, of which ${fmt(floor.perPipeHeapKb)} KiB heap and ${fmt(floor.perPipeExternalKb)} KiB external: passgate's own share of a session is about ${fmt(perSessionKb - floor.perPipeKb)} KiB`,
      `- every session told of the new message: direct ${direct.reached}/${sessions}, through passgate ${through.reached}/${sessions}`,
      `- CPU per session opened: direct ${cpuText(direct.openCpuMs)}; through passgate ${cpuText(through.openCpuMs)}`,
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
  const { markdown } = await runImapIdle();
  console.log(markdown);
}
