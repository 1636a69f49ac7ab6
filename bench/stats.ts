import { execFileSync } from 'node:child_process';
import { cpus, platform, release, totalmem } from 'node:os';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { cpuPlacement } from './fixture/cpu-placement.js';

/** Latency summary of one scenario, in milliseconds. */
export interface Summary {
  n: number;
  mean: number;
  p50: number;
  p99: number;
  min: number;
  max: number;
}

/** Nearest-rank percentile (p in 0..100) of values sorted ascending; NaN for no values. */
export function percentile(sorted: readonly number[], p: number): number {
  if (sorted.length === 0) return Number.NaN;
  const rank = Math.ceil((p / 100) * sorted.length);
  return sorted[Math.min(sorted.length, Math.max(1, rank)) - 1]!;
}

export function mean(values: readonly number[]): number {
  if (values.length === 0) return Number.NaN;
  let sum = 0;
  for (const v of values) sum += v;
  return sum / values.length;
}

export function summarize(samples: readonly number[]): Summary {
  const sorted = [...samples].sort((a, b) => a - b);
  return {
    n: sorted.length,
    mean: mean(sorted),
    p50: percentile(sorted, 50),
    p99: percentile(sorted, 99),
    min: sorted[0] ?? Number.NaN,
    max: sorted[sorted.length - 1] ?? Number.NaN,
  };
}

/** A number for a table: 3 significant digits below 10, else 1 decimal (or none from 1000). */
export function fmt(value: number): string {
  if (!Number.isFinite(value)) return 'n/a';
  if (Math.abs(value) >= 1000) return value.toFixed(0);
  if (Math.abs(value) >= 10) return value.toFixed(1);
  return value.toPrecision(3);
}

/** Where a run happened: printed with every table so numbers from different machines are not compared blindly. */
export interface Machine {
  cpu: string;
  cores: number;
  memoryGiB: number;
  os: string;
  node: string;
  date: string;
  /** The commit measured, and whether src/ had uncommitted changes. */
  revision: string;
  /** Which cores the protocol scenarios give the endpoints and passgate (fixture/cpu-placement.ts). */
  placement: string;
}

const REPO = join(dirname(fileURLToPath(import.meta.url)), '..');

function revision(): string {
  try {
    const git = (...args: string[]) => execFileSync('git', args, { cwd: REPO, encoding: 'utf8', stdio: ['ignore', 'pipe', 'ignore'] }).trim();
    const head = git('rev-parse', '--short', 'HEAD');
    return git('status', '--porcelain', '--', 'src', 'package.json', 'package-lock.json') === '' ? head : `${head} + uncommitted changes`;
  } catch {
    return 'unknown (not a git checkout)';
  }
}

/** `placement`: the one the scenario used, when it chose its own (default: cpuPlacement()). */
export function machine(placement = cpuPlacement()): Machine {
  const list = cpus();
  return {
    cpu: list[0]?.model.trim() ?? 'unknown',
    cores: list.length,
    memoryGiB: Math.round((totalmem() / 2 ** 30) * 10) / 10,
    os: `${platform()} ${release()}`,
    node: process.version,
    date: new Date().toISOString(),
    revision: revision(),
    placement: placement.describe,
  };
}

export function machineMarkdown(m: Machine, command: string): string {
  return [
    `- Machine: ${m.cpu}, ${m.cores} cores, ${m.memoryGiB} GiB RAM, ${m.os}`,
    `- Node: ${m.node}; passgate ${m.revision}`,
    `- Date: ${m.date}`,
    `- CPU placement (protocol scenarios): ${m.placement}`,
    `- Command: \`${command}\``,
  ].join('\n');
}

/** CPU time of the whole machine and of this process, to tell how much of the machine others used meanwhile. */
export interface CpuSnapshot {
  machineBusyMs: number;
  machineTotalMs: number;
  selfMs: number;
}

export function cpuSnapshot(): CpuSnapshot {
  let busy = 0;
  let total = 0;
  for (const { times } of cpus()) {
    const b = times.user + times.nice + times.sys + times.irq;
    busy += b;
    total += b + times.idle;
  }
  const self = process.cpuUsage();
  return { machineBusyMs: busy, machineTotalMs: total, selfMs: (self.user + self.system) / 1000 };
}

/**
 * Share (0..1) of the machine's CPU capacity that other processes used between two snapshots. Near 0 on a quiet
 * machine; a benchmark that ran beside a compiler or a test suite shows it here and should be run again.
 */
export function otherCpuShare(before: CpuSnapshot, after: CpuSnapshot): number {
  const total = after.machineTotalMs - before.machineTotalMs;
  if (total <= 0) return 0;
  const others = after.machineBusyMs - before.machineBusyMs - (after.selfMs - before.selfMs);
  return Math.max(0, others / total);
}

/** How this run was started, for the report: `npm run bench` or the script itself, with any BENCH_* overrides. */
export function invocation(script: string): string {
  const overrides = Object.entries(process.env)
    .filter(([name, value]) => name.startsWith('BENCH_') && value !== undefined)
    .map(([name, value]) => `${name}=${value}`)
    .sort();
  const command = process.env.npm_lifecycle_event === 'bench' ? 'npm run bench' : `npx tsx ${script}`;
  return [...overrides, command].join(' ');
}
