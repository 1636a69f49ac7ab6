/**
 * `npm run bench`: builds passgate (the protocol scenarios run the built CLI), then runs every scenario in order,
 * prints its markdown, and writes bench/results/<name>.md and .json per scenario plus bench/results/latest.md with
 * all tables. Add a scenario by adding it to ALL; BENCH_ONLY=a,b runs some.
 */
import { mkdirSync, writeFileSync } from 'node:fs';
import { dirname, join, relative } from 'node:path';
import { performance } from 'node:perf_hooks';
import { fileURLToPath } from 'node:url';
import { runBruteForce } from './brute-force.js';
import { runImapIdle } from './imap-idle.js';
import { runImapThroughput } from './imap-throughput.js';
import { runLoginLatency } from './login-latency.js';
import { runPop3Throughput } from './pop3-throughput.js';
import { runSmtpThroughput, runSmtpWan } from './smtp-throughput.js';
import { runGraphThroughput } from './graph-throughput.js';
import { invocation, machine, machineMarkdown } from './stats.js';

interface Scenario {
  /** File name in bench/results/ (without extension). */
  name: string;
  run(): Promise<{ markdown: string; json: unknown }>;
}

const ALL: readonly Scenario[] = [
  { name: 'login-latency', run: runLoginLatency },
  { name: 'smtp-throughput', run: runSmtpThroughput },
  { name: 'smtp-wan', run: runSmtpWan },
  { name: 'graph-throughput', run: runGraphThroughput },
  { name: 'imap-throughput', run: runImapThroughput },
  { name: 'imap-idle', run: runImapIdle },
  { name: 'pop3-throughput', run: runPop3Throughput },
  { name: 'brute-force', run: runBruteForce },
];

/** BENCH_ONLY=smtp-throughput,imap-idle runs just those (in this order). */
const only = (process.env.BENCH_ONLY ?? '').split(',').filter(Boolean);
for (const name of only) if (!ALL.some((s) => s.name === name)) throw new Error(`BENCH_ONLY: no scenario "${name}" (have ${ALL.map((s) => s.name).join(', ')})`);
const SCENARIOS = only.length > 0 ? ALL.filter((s) => only.includes(s.name)) : ALL;

/** BENCH_RESULTS_DIR writes the results elsewhere (the smoke test does, so a test never overwrites bench/results). */
const RESULTS = process.env.BENCH_RESULTS_DIR || join(dirname(fileURLToPath(import.meta.url)), 'results');

async function main(): Promise<void> {
  mkdirSync(RESULTS, { recursive: true });
  const started = performance.now();
  const sections: string[] = [];
  for (const scenario of SCENARIOS) {
    const t0 = performance.now();
    const { markdown, json } = await scenario.run();
    const seconds = (performance.now() - t0) / 1000;
    console.log(markdown);
    console.log(`(${scenario.name}: ${seconds.toFixed(1)} s)\n`);
    writeFileSync(join(RESULTS, `${scenario.name}.md`), markdown);
    writeFileSync(join(RESULTS, `${scenario.name}.json`), `${JSON.stringify(json, null, 2)}\n`);
    sections.push(markdown);
  }
  const total = (performance.now() - started) / 1000;
  const latest = [
    '# passgate benchmarks: latest run',
    '',
    machineMarkdown(machine(), invocation('bench/run.ts')),
    `- Scenarios: ${SCENARIOS.map((s) => s.name).join(', ')} (${total.toFixed(1)} s in all)`,
    '',
    ...sections,
  ].join('\n');
  writeFileSync(join(RESULTS, 'latest.md'), latest);
  console.log(`wrote ${relative(process.cwd(), RESULTS)}/{${SCENARIOS.map((s) => s.name).join(',')},latest}.md and the .json files`);
}

await main();
