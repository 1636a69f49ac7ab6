import { parseArgs } from 'node:util';
import { formatReport } from './chaos-report.js';
import { DEFAULT_CHAOS_OPTIONS, runChaos } from './chaos-run.js';

/**
 * `npm run chaos -- --seconds 180 --seed 7 [--senders 4] [--readers 3] [--keep]`: one bounded chaos run against
 * real dependencies on loopback; prints what it did and the counts, exits 1 if an invariant broke.
 */
const { values } = parseArgs({
  options: {
    seconds: { type: 'string', default: String(DEFAULT_CHAOS_OPTIONS.durationMs / 1000) },
    seed: { type: 'string', default: String(Date.now() % 100_000) },
    senders: { type: 'string', default: String(DEFAULT_CHAOS_OPTIONS.senders) },
    readers: { type: 'string', default: String(DEFAULT_CHAOS_OPTIONS.readers) },
    users: { type: 'string', default: String(DEFAULT_CHAOS_OPTIONS.users) },
    'max-recovery-ms': { type: 'string', default: String(DEFAULT_CHAOS_OPTIONS.maxRecoveryMs) },
    json: { type: 'boolean', default: false },
    keep: { type: 'boolean', default: false },
  },
});

const number = (name: keyof typeof values, min: number, max: number): number => {
  const value = Number(values[name]);
  if (!Number.isInteger(value) || value < min || value > max) {
    console.error(`--${name}: an integer from ${min} to ${max}, not ${JSON.stringify(values[name])}`);
    process.exit(2);
  }
  return value;
};

const options = {
  durationMs: number('seconds', 5, 1800) * 1000,
  seed: number('seed', 0, 2 ** 31 - 1),
  senders: number('senders', 0, 32),
  readers: number('readers', 0, 32),
  users: number('users', 1, 20),
  maxRecoveryMs: number('max-recovery-ms', 100, 600_000),
  keepFolder: values.keep,
};
const report = await runChaos(options);
console.log(values.json ? JSON.stringify(report, null, 2) : `\n${formatReport(report)}`);
process.exit(report.violations.length === 0 ? 0 : 1);
