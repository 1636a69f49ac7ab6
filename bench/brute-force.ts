/**
 * Brute force: the login rate of legitimate users (IMAP LOGIN + LOGOUT through passgate, from their own
 * addresses) for BENCH_BRUTE_SECONDS (20) without an attack, then for as long while 20 addresses guess passwords as
 * fast as they can (BENCH_BRUTE_CONNECTIONS parallel connections per address, each guessing until passgate closes
 * it). Goal: the legitimate rate under attack stays >= 0.8 of the rate without it.
 *
 * Every client reaches passgate's PROXY-protocol listener with a PROXY v2 header naming its address (as a load
 * balancer would), so passgate sees 20 attacking addresses and separate legitimate ones, all from one machine.
 * passgate runs on its defaults: default argon2id, default limits, failure delay 1 s (+ up to 0.5 s).
 */
import { readFileSync } from 'node:fs';
import { performance } from 'node:perf_hooks';
import { startWorld } from './fixture/bench-world.js';
import { compare, comparisonTable, envCount, type Comparison } from './fixture/comparison.js';
import { ImapWire, proxyV2Header, quoted } from './fixture/imap-wire-client.js';
import { fmt, invocation, machine, machineMarkdown } from './stats.js';

const LEGIT_USERS = 8;
const ATTACKERS = 20;

/** Sums a counter family in a Prometheus text exposition, optionally only samples whose labels contain `filter`. */
function counter(text: string, name: string, filter = ''): number {
  let sum = 0;
  for (const line of text.split('\n')) {
    if (line.startsWith(`${name}{`) || line.startsWith(`${name} `)) {
      if (filter && !line.includes(filter)) continue;
      sum += Number(line.slice(line.lastIndexOf(' ') + 1));
    }
  }
  return sum;
}

export async function runBruteForce(): Promise<{ markdown: string; json: unknown }> {
  const seconds = envCount('BENCH_BRUTE_SECONDS', 20);
  const perAttacker = envCount('BENCH_BRUTE_CONNECTIONS', 8);
  const world = await startWorld({ dovecot: true });
  try {
    const users = Array.from({ length: LEGIT_USERS }, (_, i) => `staff${i}@bench.example`);
    const passwords = await world.createPasswords(users);
    const passgate = await world.startPassgate();
    const ca = readFileSync(world.passgateCaFile, 'utf8');
    const port = passgate.ports.imap['imaps-proxied']!;
    const metrics = () => fetch(`http://127.0.0.1:${passgate.ports.ops}/metrics`).then((r) => r.text());
    const connectAs = (ip: string, sourcePort: number) => ImapWire.connect({ port, ca, servername: 'passgate.test', proxyHeader: proxyV2Header(ip, sourcePort), timeoutMs: 60_000 });

    // Legitimate users: each from its own address, log in and out in a loop until `until`.
    const legit = async (until: number) => {
      let logins = 0;
      let failures = 0;
      await Promise.all(
        users.map(async (user, u) => {
          for (let k = 0; performance.now() < until; k++) {
            try {
              const c = await connectAs(`10.1.0.${u + 1}`, 20000 + (k % 40000));
              await c.command(`LOGIN ${quoted(user)} ${quoted(passwords.get(user)!)}`);
              await c.command('LOGOUT');
              c.close();
              logins++;
            } catch {
              failures++;
            }
          }
        }),
      );
      return { logins, failures };
    };

    // Attackers: 20 addresses, `perAttacker` connections each, guessing until the deadline.
    let guesses = 0;
    let refusedConnections = 0;
    const attack = async (until: number) => {
      await Promise.all(
        Array.from({ length: ATTACKERS * perAttacker }, async (_, n) => {
          const ip = `203.0.113.${(n % ATTACKERS) + 1}`;
          while (performance.now() < until) {
            let c: ImapWire;
            try {
              c = await connectAs(ip, 30000 + n);
            } catch {
              refusedConnections++;
              continue;
            }
            try {
              while (performance.now() < until) {
                const target = users[guesses % users.length]!;
                guesses++;
                await c.command(`LOGIN ${quoted(target)} ${quoted(`WRONG-GUESS-${guesses}-abcd`)}`, false);
              }
            } catch {
              // closed by passgate after too many failures: reconnect
            } finally {
              c.close();
            }
          }
        }),
      );
    };

    for (let i = 0; i < users.length; i++) (await connectAs('10.1.0.200', 1000 + i)).close(); // JIT and TLS warm-up
    await legit(performance.now() + 2000); // credential cache warm-up (not measured)
    const quiet = await legit(performance.now() + seconds * 1000);
    const before = await metrics();
    const until = performance.now() + seconds * 1000;
    const [attacked] = await Promise.all([legit(until), attack(until)]);
    const after = await metrics();
    const quietRate = quiet.logins / seconds;
    const attackedRate = attacked.logins / seconds;
    const blocks = counter(after, 'passgate_rate_limit_blocks_total') - counter(before, 'passgate_rate_limit_blocks_total');
    const failed = counter(after, 'passgate_auth_attempts_total', 'result="failure"') - counter(before, 'passgate_auth_attempts_total', 'result="failure"');
    const rows: Comparison[] = [
      compare(
        `legitimate logins, ${LEGIT_USERS} users from their own addresses (no attack → under attack)`,
        'logins/s',
        quietRate,
        attackedRate,
        { atLeast: 0.8 },
        `${quiet.failures + attacked.failures} legitimate failures`,
      ),
    ];
    const json = {
      scenario: 'brute-force',
      machine: machine(),
      command: invocation('bench/run.ts'),
      parameters: { seconds, attackers: ATTACKERS, connectionsPerAttacker: perAttacker, legitimateUsers: LEGIT_USERS },
      quiet,
      attacked,
      attack: { guesses, refusedConnections, failedAttemptsCounted: failed, rateLimitBlocks: blocks },
      rows,
    };
    const markdown = [
      '## Brute force: legitimate logins while 20 addresses guess',
      '',
      machineMarkdown(json.machine, json.command),
      `- ${seconds} s without, then ${seconds} s with the attack: ${ATTACKERS} addresses × ${perAttacker} connections guessing (IMAP LOGIN through the PROXY v2 listener), passgate on its defaults`,
      `- the attack sent ${guesses} guesses; passgate counted ${failed} failed attempts and ${blocks} rate-limit refusals; ${refusedConnections} attacker connections failed`,
      '- "direct" below is the legitimate rate without the attack, "through passgate" the rate under attack',
      '',
      comparisonTable(rows),
      '',
      `Legitimate rate: ${fmt(quietRate)}/s without the attack, ${fmt(attackedRate)}/s under it.`,
      '',
    ].join('\n');
    return { markdown, json };
  } finally {
    await world.close();
  }
}

if (import.meta.url === `file://${process.argv[1]}`) {
  const { markdown } = await runBruteForce();
  console.log(markdown);
}
