import { parseArgs } from 'node:util';
import fc from 'fast-check';
import type { FuzzTarget } from './fuzz-property.js';
import { openImapParserTarget } from './imap-parser.fuzz.js';
import { openImapSessionTarget } from './imap-session.fuzz.js';
import { openPop3Target } from './pop3-session.fuzz.js';
import { openSmtpSessionTarget } from './smtp-session.fuzz.js';

/**
 * `npm run fuzz -- [--seconds 60] [--target imap|smtp|pop3|all] [--property TEXT] [--seed N [--path P]]`
 *
 * Runs the fuzz properties of test/fuzz/ for a time budget, round after round with fresh random seeds, and stops
 * at the first failure, printing its seed and path and the command that replays it. With --seed it runs that
 * seed (and with --path only the failing case, shrunk), as often as needed to reproduce.
 */

const TARGETS: Record<string, (() => Promise<FuzzTarget>)[]> = {
  imap: [openImapParserTarget, openImapSessionTarget],
  smtp: [openSmtpSessionTarget],
  pop3: [openPop3Target],
};
TARGETS.all = [...TARGETS.imap!, ...TARGETS.smtp!, ...TARGETS.pop3!];

const { values } = parseArgs({
  options: {
    seconds: { type: 'string', default: '60' },
    target: { type: 'string', default: 'all' },
    property: { type: 'string' },
    seed: { type: 'string' },
    path: { type: 'string' },
  },
});
const openers = TARGETS[values.target];
const seconds = Number(values.seconds);
if (!openers || !(seconds > 0)) {
  console.error('usage: npm run fuzz -- [--seconds N] [--target imap|smtp|pop3|all] [--property TEXT] [--seed N [--path P]]');
  process.exit(2);
}

const deadline = Date.now() + seconds * 1000;
const targets = await Promise.all(openers.map((open) => open()));
const properties = targets.flatMap((t) => t.properties).filter((p) => values.property === undefined || p.name.includes(values.property));
if (properties.length === 0) {
  console.error(`no property matches ${JSON.stringify(values.property)}`);
  process.exit(2);
}
const totalWeight = properties.reduce((sum, p) => sum + (p.weight ?? 1), 0);
/** Property runs so far (an SMTP run is a batch of 1 to 4 connections). */
const cases = new Map<string, number>();
let failed = false;

const close = async () => {
  for (const target of targets) await target.close().catch((error: Error) => console.error(`closing: ${error.message}`));
};

/** Runs one property from `seed`; false when it failed (and the failure is printed). */
async function check(p: (typeof properties)[number], seed: number, timeMs: number): Promise<boolean> {
  const details = await fc.check(p.property, {
    seed,
    ...(values.path !== undefined ? { path: values.path } : {}),
    numRuns: 1_000_000_000,
    interruptAfterTimeLimit: Math.max(1000, timeMs),
    includeErrorInReport: true,
  });
  cases.set(p.name, (cases.get(p.name) ?? 0) + details.numRuns);
  if (!details.failed) return true;
  console.log(`\nFAILED: ${p.name}\n${fc.defaultReportMessage(details) ?? ''}`);
  const property = JSON.stringify(p.name);
  console.log(`\nreproduce: npm run fuzz -- --target ${values.target} --property ${property} --seed ${details.seed} --path "${details.counterexamplePath}"`);
  return false;
}

try {
  if (values.seed !== undefined) {
    // Replay: each property from the given seed (only the failing case with --path), the budget shared out.
    for (const p of properties) {
      if (!(await check(p, Number(values.seed), (seconds * 1000) / properties.length))) {
        failed = true;
        break;
      }
    }
  } else {
    // Rounds over every property, a fresh seed each time, a slice of the budget each, until the budget is spent.
    rounds: while (Date.now() < deadline) {
      for (const p of properties) {
        const left = deadline - Date.now();
        if (left <= 0) break rounds;
        // About three rounds in the budget, so each property runs from several seeds.
        const slice = Math.min(left, Math.max(1000, (seconds * 1000 * (p.weight ?? 1)) / totalWeight / 3));
        if (!(await check(p, (Math.random() * 2 ** 31) | 0, slice))) {
          failed = true;
          break rounds;
        }
      }
    }
  }
} finally {
  await close();
}

for (const [name, count] of cases) console.log(`${String(count).padStart(9)} runs  ${name}`);
console.log(failed ? 'fuzz: a property failed (see above)' : 'fuzz: no failure');
process.exit(failed ? 1 : 0);
