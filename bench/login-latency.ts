/**
 * Login latency: what one authenticate() costs, cold (argon2 runs) and warm (the verified-credential cache
 * answers), against the raw cost of argon2 itself with the same parameters and secret.
 *
 * Everything runs in this process on the real composition root (openApp) with the embedded SQLite store in a
 * temporary folder and the DEFAULT argon2 parameters. Run alone with `npx tsx bench/login-latency.ts`;
 * `npm run bench` runs it with the other scenarios. N is BENCH_LOGINS_COLD / BENCH_LOGINS_WARM.
 */
import { mkdtempSync, realpathSync, rmSync, writeFileSync } from 'node:fs';
import { availableParallelism, tmpdir } from 'node:os';
import { join } from 'node:path';
import { performance } from 'node:perf_hooks';
import { fileURLToPath } from 'node:url';
import { stringify } from 'yaml';
import { openApp, type App } from '../src/app.js';
import { loadConfig } from '../src/config/config-loader.js';
import type { Config } from '../src/config/config-schema.js';
import type { AuthOutcome, AuthRequest } from '../src/core/authenticator.js';
import { derivePepperKeys } from '../src/core/pepper-keys.js';
import { Argon2PasswordHasher } from '../src/credentials/argon2-password-hasher.js';
import { createLogger } from '../src/observability/logger.js';
import { cpuSnapshot, fmt, invocation, machine, machineMarkdown, otherCpuShare, summarize, type Machine, type Summary } from './stats.js';
// The tests' counting decorator (it sits inside the concurrency bound): proves cold is cold and warm is warm.
import { CountingHasher } from '../test/helpers/counting-hasher.js';
import { CLI_ACTOR } from '../src/core/actor.js';

const PEPPER = 'bench-pepper-0123456789abcdef-not-a-secret';
/** The schema's defaults (OWASP); checked against the loaded config so a changed default is noticed. */
const DEFAULT_ARGON2 = { memory_kib: 19456, time_cost: 2, parallelism: 1 };
const HIGH_CONCURRENCY = 8;
/** Users whose (user, password) the warm scenario cycles through; each is logged in once before measuring. */
const WARM_POOL = 200;
const WARMUP = 5;

export interface Row extends Summary {
  scenario: string;
  concurrency: number;
  /** Completed operations per second of this operation's own wall time (its batches; interleaved ones excluded). */
  throughput: number;
  wallMs: number;
  /** Share of the machine's CPU other processes used during this row (0..1); comparable numbers need it near 0. */
  otherCpu: number;
  note: string;
}

export interface LoginLatencyJson {
  scenario: 'login-latency';
  machine: Machine;
  command: string;
  parameters: {
    argon2: typeof DEFAULT_ARGON2;
    hashConcurrency: number;
    uvThreadpoolSize: string;
    loginsCold: number;
    loginsWarm: number;
    warmPool: number;
    store: 'sqlite';
  };
  rows: Row[];
  /** Process warnings emitted while the scenario ran (e.g. TimeoutOverflowWarning), by message, with counts. */
  warnings: Record<string, number>;
  ratios: {
    coldP50OverArgon2P50: number;
    coldOverheadP50Ms: number;
    warmP50OverColdP50: number;
    coldThroughputC8OverC1: number;
  };
}

function envCount(name: string, fallback: number): number {
  const raw = process.env[name];
  if (raw === undefined || raw === '') return fallback;
  const n = Number(raw);
  if (!Number.isInteger(n) || n < 1) throw new Error(`${name} must be a positive whole number, got "${raw}"`);
  return n;
}

/** A distinct, well-formed client address per login, so no per-ip or per-pair counter ever sees two attempts. */
function ipOf(block: number, i: number): string {
  return `10.${block}.${(i >> 8) & 255}.${i & 255}`;
}

interface Measured {
  samples: number[];
  /** Wall time of this operation's batches only (interleaved operations do not count against each other). */
  wallMs: number;
  otherCpu: number;
}

type Op = (i: number) => Promise<void>;

const yieldToEventLoop = () => new Promise<void>((resolve) => setImmediate(resolve));

/**
 * Runs each op for i in 0..n-1, `concurrency` at a time (Promise.all per batch), and times each call from its own
 * start: at concurrency > 1 a latency includes the wait for an argon2 slot. Several ops are interleaved batch by
 * batch (in a rotating order), so a drift of the machine's speed during the run (frequency, noisy neighbours)
 * touches them alike and their ratio stays fair.
 */
async function measure(n: number, concurrency: number, ops: readonly Op[]): Promise<Measured[]> {
  const results = ops.map((): Measured => ({ samples: [], wallMs: 0, otherCpu: 0 }));
  const cpu = cpuSnapshot();
  for (let i = 0, round = 0; i < n; i += concurrency, round++) {
    for (let k = 0; k < ops.length; k++) {
      const index = (k + round) % ops.length;
      const op = ops[index]!;
      const result = results[index]!;
      const batchStart = performance.now();
      const batch: Promise<void>[] = [];
      for (let j = i; j < Math.min(n, i + concurrency); j++) {
        batch.push(
          (async () => {
            const start = performance.now();
            await op(j);
            result.samples.push(performance.now() - start);
          })(),
        );
      }
      await Promise.all(batch);
      result.wallMs += performance.now() - batchStart;
      // Back to the event loop between batches, untimed, as a server is between connections: a warm login
      // settles in microtasks alone, so without this the whole loop would starve timers and nextTick work.
      await yieldToEventLoop();
    }
  }
  const otherCpu = otherCpuShare(cpu, cpuSnapshot());
  for (const result of results) result.otherCpu = otherCpu;
  return results;
}

function row(scenario: string, concurrency: number, result: Measured, note: string): Row {
  const summary = summarize(result.samples);
  const throughput = (summary.n / result.wallMs) * 1000;
  return { scenario, concurrency, ...summary, wallMs: result.wallMs, throughput, otherCpu: result.otherCpu, note };
}

function writeConfig(dir: string, name: string, auth: Record<string, unknown>): Config {
  const file = join(dir, name);
  writeFileSync(
    file,
    stringify({
      data_dir: dir,
      log: { level: 'silent' },
      security: { pepper: PEPPER },
      ...(Object.keys(auth).length > 0 ? { auth } : {}),
    }),
  );
  // env {}: PASSGATE_* variables of the shell must not change what is measured.
  const { config } = loadConfig({ path: file, env: {}, cwd: dir });
  const a = config.security.argon2;
  if (a.memory_kib !== DEFAULT_ARGON2.memory_kib || a.time_cost !== DEFAULT_ARGON2.time_cost || a.parallelism !== DEFAULT_ARGON2.parallelism) {
    throw new Error(`expected the default argon2 parameters ${JSON.stringify(DEFAULT_ARGON2)}, got ${JSON.stringify(a)}`);
  }
  return config;
}

async function open(config: Config): Promise<{ app: App; counter: CountingHasher }> {
  let counter: CountingHasher | undefined;
  const app = await openApp(config, {
    logger: createLogger(config.log.level),
    decorateHasher: (inner) => (counter = new CountingHasher(inner)),
  });
  return { app, counter: counter! };
}

function expectOk(outcome: AuthOutcome, what: string): void {
  if (!outcome.ok) throw new Error(`${what}: expected a successful login, got ${outcome.reason}`);
}

function expectInvalid(outcome: AuthOutcome, what: string): void {
  if (outcome.ok || outcome.reason !== 'invalid-credentials' || outcome.temporary) {
    throw new Error(`${what}: expected invalid-credentials, got ${outcome.ok ? 'ok' : outcome.reason}`);
  }
}

function expectVerifications(counter: CountingHasher, before: number, expected: number, what: string): void {
  const ran = counter.verifications - before;
  if (ran !== expected) throw new Error(`${what}: expected ${expected} argon2 verifications, counted ${ran}`);
}

interface BenchUser {
  username: string;
  /** As shown to the operator (grouped), i.e. what a client sends. */
  password: string;
}

export async function runLoginLatency(): Promise<{ markdown: string; json: LoginLatencyJson }> {
  const coldN = envCount('BENCH_LOGINS_COLD', 200);
  const warmN = envCount('BENCH_LOGINS_WARM', 2000);
  const dir = realpathSync(mkdtempSync(join(tmpdir(), 'passgate-bench-')));
  const rows: Row[] = [];
  let hashConcurrency: number;
  const warmPool = Math.min(WARM_POOL, coldN, warmN);
  // A warning per login (printed to stderr) costs time and points at a bug: count them into the report.
  const warnings: Record<string, number> = {};
  const onWarning = (warning: Error) => {
    const key = `${warning.name}: ${warning.message.split('\n')[0]}`;
    warnings[key] = (warnings[key] ?? 0) + 1;
  };
  process.on('warning', onWarning);
  try {
    const coldConfig = writeConfig(dir, 'cold.yaml', { cache_ttl_seconds: 0 });
    const warmConfig = writeConfig(dir, 'warm.yaml', {});
    if (warmConfig.auth.cache_ttl_seconds <= 0) throw new Error('the warm configuration must have the credential cache on');

    // ---- cold app: create the users (not measured), then argon2 alone, cold, unknown user, cold at concurrency 8.
    const { app: cold, counter: coldCount } = await open(coldConfig);
    const users: BenchUser[] = [];
    try {
      // As openApp does: 0 means one argon2 at a time per CPU core.
      hashConcurrency = coldConfig.auth.hash_concurrency || availableParallelism();
      for (let i = 0; i < coldN; i += HIGH_CONCURRENCY) {
        const batch: Promise<BenchUser>[] = [];
        for (let j = i; j < Math.min(coldN, i + HIGH_CONCURRENCY); j++) {
          const username = `user${j}@bench.example`;
          batch.push(cold.admin.appPasswords.create(CLI_ACTOR, { username, name: 'bench' }).then((c) => ({ username, password: c.password })));
        }
        users.push(...(await Promise.all(batch)));
      }

      // 1. argon2 alone: the same class, parameters, secret and stored hashes the app uses, without the bound.
      const records = new Map((await cold.store.list()).map((r) => [r.username, r.hash]));
      const { memory_kib, time_cost, parallelism } = coldConfig.security.argon2;
      const raw = new Argon2PasswordHasher(
        { memoryKib: memory_kib, timeCost: time_cost, parallelism },
        derivePepperKeys(coldConfig.security.pepper).hashSecret,
      );
      const rawVerify = async (i: number) => {
        const user = users[i % users.length]!;
        const ok = await raw.verify(records.get(user.username)!, cold.format.normalize(user.password)!);
        if (!ok) throw new Error(`argon2 verify of ${user.username} failed`);
      };
      const login = (request: Omit<AuthRequest, 'secure'>) => cold.authenticator.authenticate({ ...request, secure: true });
      const protocolOf = (i: number) => (i % 2 ? 'imap' : 'smtp');
      // 2. cold login: every login runs argon2 (cache off). Distinct users and client addresses.
      const coldLogin = (block: number) => async (i: number) => {
        const user = users[i]!;
        expectOk(await login({ ...user, protocol: protocolOf(i), clientIp: ipOf(block, i) }), `cold login ${i}`);
      };
      // 4. unknown user: a well-formed app password for a user that has none; verified against the dummy hash.
      const unknownLogin = async (i: number) => {
        const outcome = await login({ username: `nobody${i}@bench.example`, password: users[i]!.password, protocol: protocolOf(i), clientIp: ipOf(2, i) });
        expectInvalid(outcome, `unknown user ${i}`);
      };

      // Warm-up (not measured): JIT, prepared statements, and the verifier's dummy hash (made on the first unknown user).
      for (let i = 0; i < WARMUP; i++) {
        await rawVerify(i);
        const user = users[i % users.length]!;
        expectOk(await login({ ...user, protocol: 'smtp', clientIp: ipOf(250, i) }), 'warm-up');
        expectInvalid(await login({ username: `warmup${i}@bench.example`, password: user.password, protocol: 'smtp', clientIp: ipOf(251, i) }), 'warm-up');
      }

      // One at a time, interleaved: argon2 alone, cold login, unknown user.
      let before = coldCount.verifications;
      const [raw1, cold1, unknown1] = await measure(coldN, 1, [rawVerify, coldLogin(1), unknownLogin]);
      expectVerifications(coldCount, before, 2 * coldN, 'cold login and unknown user');
      rows.push(row('argon2 verify alone', 1, raw1!, 'Argon2PasswordHasher.verify, no app around it'));
      rows.push(row('cold login', 1, cold1!, 'cache off: one argon2 per login'));
      rows.push(row('unknown user', 1, unknown1!, 'dummy-hash argon2; failure delay (listener) not included'));

      // Eight at a time, interleaved: raw argon2 (unbounded) and cold login (argon2 bounded to auth.hash_concurrency).
      before = coldCount.verifications;
      const [raw8, cold8] = await measure(coldN, HIGH_CONCURRENCY, [rawVerify, coldLogin(3)]);
      expectVerifications(coldCount, before, coldN, 'cold login at concurrency 8');
      rows.push(row('argon2 verify alone', HIGH_CONCURRENCY, raw8!, `unbounded: all ${HIGH_CONCURRENCY} go to the libuv pool (${process.env.UV_THREADPOOL_SIZE ?? 4} threads)`));
      rows.push(row('cold login', HIGH_CONCURRENCY, cold8!, `latency includes the wait for one of ${hashConcurrency} argon2 slots`));
    } finally {
      await cold.close();
    }

    // ---- warm app, same store: 3. every (user, password) logged in once, then measured from the cache.
    const { app: warm, counter: warmCount } = await open(warmConfig);
    try {
      const login = (request: Omit<AuthRequest, 'secure'>) => warm.authenticator.authenticate({ ...request, secure: true });
      for (let i = 0; i < warmPool; i++) expectOk(await login({ ...users[i]!, protocol: 'smtp', clientIp: ipOf(4, i) }), `priming ${i}`);
      const before = warmCount.verifications;
      const [warm1] = await measure(warmN, 1, [
        async (i) => {
          const user = users[i % warmPool]!;
          expectOk(await login({ ...user, protocol: i % 2 ? 'imap' : 'smtp', clientIp: ipOf(5 + (i >> 16), i) }), `warm login ${i}`);
        },
      ]);
      rows.push(row('warm login', 1, warm1!, `cache hit, no argon2 (${warmPool} users cycled)`));
      expectVerifications(warmCount, before, 0, 'warm login');
    } finally {
      await warm.close();
    }
  } finally {
    await yieldToEventLoop(); // warnings are emitted on the next tick
    process.off('warning', onWarning);
    rmSync(dir, { recursive: true, force: true });
  }

  const find = (scenario: string, concurrency: number) => rows.find((r) => r.scenario === scenario && r.concurrency === concurrency)!;
  const argon = find('argon2 verify alone', 1);
  const cold1 = find('cold login', 1);
  const cold8 = find('cold login', HIGH_CONCURRENCY);
  const warm1 = find('warm login', 1);
  const ratios = {
    coldP50OverArgon2P50: cold1.p50 / argon.p50,
    coldOverheadP50Ms: cold1.p50 - argon.p50,
    warmP50OverColdP50: warm1.p50 / cold1.p50,
    coldThroughputC8OverC1: cold8.throughput / cold1.throughput,
  };
  const json: LoginLatencyJson = {
    scenario: 'login-latency',
    machine: machine(),
    command: invocation('bench/login-latency.ts'),
    parameters: {
      argon2: DEFAULT_ARGON2,
      hashConcurrency,
      uvThreadpoolSize: process.env.UV_THREADPOOL_SIZE ?? '4 (default)',
      loginsCold: coldN,
      loginsWarm: warmN,
      warmPool,
      store: 'sqlite',
    },
    rows,
    warnings,
    ratios,
  };
  return { markdown: toMarkdown(json), json };
}

function toMarkdown(j: LoginLatencyJson): string {
  const p = j.parameters;
  const busy = Math.max(...j.rows.map((r) => r.otherCpu));
  const lines = [
    '## Login latency (authenticator, in-process)',
    '',
    machineMarkdown(j.machine, j.command),
    `- argon2id m=${p.argon2.memory_kib} KiB, t=${p.argon2.time_cost}, p=${p.argon2.parallelism} (defaults); ` +
      `auth.hash_concurrency ${p.hashConcurrency}; UV_THREADPOOL_SIZE ${p.uvThreadpoolSize}; store: embedded SQLite; log: silent`,
    `- N: ${p.loginsCold} per cold scenario, ${p.loginsWarm} warm (${p.warmPool} users, each logged in once before)`,
    '',
    '| scenario | concurrency | N | p50 ms | p99 ms | mean ms | max ms | logins/s | other CPU | note |',
    '|---|--:|--:|--:|--:|--:|--:|--:|--:|---|',
    ...j.rows.map(
      (r) =>
        `| ${r.scenario} | ${r.concurrency} | ${r.n} | ${fmt(r.p50)} | ${fmt(r.p99)} | ${fmt(r.mean)} | ${fmt(r.max)} | ${fmt(r.throughput)} | ${(r.otherCpu * 100).toFixed(0)} % | ${r.note} |`,
    ),
    '',
    `- cold p50 / argon2 p50: **${j.ratios.coldP50OverArgon2P50.toFixed(3)}** ` +
      `(everything around argon2 adds ${fmt(j.ratios.coldOverheadP50Ms)} ms at the median)`,
    `- warm p50 / cold p50: **${j.ratios.warmP50OverColdP50.toPrecision(3)}**`,
    `- cold throughput, concurrency ${HIGH_CONCURRENCY} / concurrency 1: **${j.ratios.coldThroughputC8OverC1.toFixed(2)}×**`,
    ...(busy > 0.05
      ? [
          `- **Warning**: other processes used up to ${(busy * 100).toFixed(0)} % of the machine's CPU during a row ` +
            '("other CPU"): these numbers are disturbed; run again on a quiet machine.',
        ]
      : []),
    ...Object.entries(j.warnings).map(([message, count]) => `- **Warning**: the process emitted ${count} × \`${message}\` during the run.`),
    '',
  ];
  return lines.join('\n');
}

if (process.argv[1] !== undefined && realpathSync(process.argv[1]) === fileURLToPath(import.meta.url)) {
  const { markdown } = await runLoginLatency();
  console.log(markdown);
}
