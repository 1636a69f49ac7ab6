/**
 * Idle IMAP sessions: BENCH_IDLE_SESSIONS (10,000, or as many as this machine's open-file limit lets one process
 * hold: each session through passgate is two sockets in passgate's process) concurrent sessions in IDLE, opened
 * directly against Dovecot and then through one passgate process, one set after the other. Reports passgate's RSS
 * per session (goal below 64 KB), the time to open them all (direct and through), and that a new message reaches
 * every session (one delivery per mailbox; sessions are spread over BENCH_IDLE_MAILBOXES mailboxes).
 */
import { execFileSync } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { performance } from 'node:perf_hooks';
import { startWorld } from './fixture/bench-world.js';
import { compare, comparisonTable, envCount, pool, type Comparison } from './fixture/comparison.js';
import { tlsPipeFloorKb } from './fixture/tls-pipe-floor.js';
import { ImapWire, quoted, xoauth2 } from './fixture/imap-wire-client.js';
import { fmt, invocation, machine, machineMarkdown } from './stats.js';

const OPEN_CONCURRENCY = 64;

function openFileLimit(): number {
  return Number(execFileSync('sh', ['-c', 'ulimit -n'], { encoding: 'utf8' }).trim()) || 1024;
}

export async function runImapIdle(): Promise<{ markdown: string; json: unknown }> {
  const limit = openFileLimit();
  // passgate holds a client and an upstream socket per session, plus its own few dozen descriptors.
  const fit = Math.floor((limit - 256) / 2);
  const requested = envCount('BENCH_IDLE_SESSIONS', 10_000);
  const sessions = Math.min(requested, fit);
  const mailboxes = envCount('BENCH_IDLE_MAILBOXES', 100);
  const perMailbox = Math.ceil(sessions / mailboxes);
  // Dovecot: TLS is terminated in imap-login, which stays in the path; both it and imap serve many clients per
  // process here (the defaults are one process per connection, capped at 100).
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
  const world = await startWorld({ dovecot: true, dovecotConfig });
  try {
    const users = Array.from({ length: mailboxes }, (_, i) => `idle${i}@bench.example`);
    const passwords = await world.createPasswords(users);
    // All sessions come from 127.0.0.1: lift the per-address cap (50 by default) for this one.
    const passgate = await world.startPassgate({ imap: { max_connections: sessions + 100, max_connections_per_ip: sessions + 100 } });
    const token = await world.token();
    const dovecotCa = readFileSync(world.dovecotCaFile!, 'utf8');
    const passgateCa = readFileSync(world.passgateCaFile, 'utf8');
    for (const user of users) await world.dovecot!.deliver(user, Buffer.from(`Subject: first\r\n\r\nhello\r\n`));

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

    const round = async (path: Path, round: number) => {
      const clients: ImapWire[] = new Array(sessions);
      const openMs = await pool(sessions, OPEN_CONCURRENCY, async (i) => {
        clients[i] = await openOne(path, users[i % mailboxes]!);
      });
      await new Promise((r) => setTimeout(r, 3000)); // let both sides settle (and collect) before measuring
      const rssKb = path === 'passgate' ? passgate.rssKb() : 0;
      // One new message per mailbox: every session of that mailbox must be told (`* n EXISTS`).
      const start = performance.now();
      const told = clients.map((c) => c.waitFor(/^\* \d+ EXISTS/, 60_000).then(() => true, () => false));
      for (const user of users) await world.dovecot!.deliver(user, Buffer.from(`Subject: round ${round}\r\n\r\nnew mail\r\n`));
      const results = await Promise.all(told);
      const notifyMs = performance.now() - start;
      const reached = results.filter(Boolean).length;
      for (const c of clients) c.close();
      await new Promise((r) => setTimeout(r, 3000)); // sessions wind down on both sides before the next round
      return { openMs, rssKb, notifyMs, reached };
    };

    // Warm-up: JIT, the credential cache (one login per app password), Dovecot's processes.
    for (const user of users) (await openOne('passgate', user)).close();
    await new Promise((r) => setTimeout(r, 2000));
    const baselineKb = passgate.rssKb();
    const direct = await round('direct', 1);
    const through = await round('passgate', 2);
    const perSessionKb = (through.rssKb - baselineKb) / sessions;
    // The floor: what a bare Node process spends on an idle TLS-to-TLS pipe (no IMAP, no passgate), same run.
    const floorPipes = Math.min(sessions, 2000);
    const floorKb = await tlsPipeFloorKb(floorPipes);
    const rows: Comparison[] = [
      compare(`open ${sessions} sessions (LOGIN, SELECT, IDLE), ${OPEN_CONCURRENCY} at a time`, 'sessions/s', (sessions / direct.openMs) * 1000, (sessions / through.openMs) * 1000),
      compare('a new message reaches every session (time until the last is told)', 's', direct.notifyMs / 1000, through.notifyMs / 1000, undefined, `direct ${direct.reached}/${sessions}, through ${through.reached}/${sessions} told`),
    ];
    const json = {
      scenario: 'imap-idle',
      machine: machine(),
      command: invocation('bench/run.ts'),
      parameters: { requested, sessions, openFileLimit: limit, mailboxes, openConcurrency: OPEN_CONCURRENCY },
      passgate: { baselineKb, rssKb: through.rssKb, perSessionKb },
      nodeTlsPipeFloor: { pipes: floorPipes, perPipeKb: floorKb },
      direct,
      through,
      rows,
    };
    const capped = sessions < requested ? ` (${requested} asked; this machine's open-file limit, ${limit} per process with no way to raise it, fits ${fit} sessions through one process: two sockets each)` : '';
    const markdown = [
      '## IMAP IDLE: many idle sessions through one passgate process',
      '',
      machineMarkdown(json.machine, json.command),
      `- ${sessions} sessions${capped}, spread over ${mailboxes} mailboxes; TLS on both sides`,
      `- passgate RSS: ${fmt(baselineKb / 1024)} MiB before, ${fmt(through.rssKb / 1024)} MiB with ${sessions} sessions: **${fmt(perSessionKb)} KiB per session** (goal < 64 KB: ${perSessionKb * 1.024 < 64 ? 'met' : '**missed**'})`,
      `- a bare Node TLS-to-TLS pipe (no IMAP, no passgate; ${floorPipes} pipes, RSS after a GC) costs **${fmt(floorKb)} KiB per pipe**: passgate's own share of a session is about ${fmt(perSessionKb - floorKb)} KiB`,
      `- every session told of the new message: direct ${direct.reached}/${sessions}, through passgate ${through.reached}/${sessions}`,
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
