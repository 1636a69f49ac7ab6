/**
 * `npm run test:alone -- [files…]`: runs every test of each file on its own (`--test-name-pattern` with the
 * test's exact name), so a test that only passes after another one has run shows up. Without files: every
 * `*.test.ts` under test/. Lists each test as it goes and ends with the ones that failed alone; exits 1 if any did.
 * Slow by design (one process per test): a check to run before a release or after a change to shared helpers,
 * not part of `npm test`.
 */
import { spawnSync } from 'node:child_process';
import { readdirSync, statSync } from 'node:fs';
import { join, relative, resolve } from 'node:path';

const ROOT = resolve(import.meta.dirname, '../..');
const env = { ...process.env };
delete env.NODE_TEST_CONTEXT;

function testFiles(dir: string): string[] {
  return readdirSync(dir).flatMap((name) => {
    const path = join(dir, name);
    if (statSync(path).isDirectory()) return testFiles(path);
    return name.endsWith('.test.ts') ? [relative(ROOT, path)] : [];
  });
}

/** Runs node's test runner on `file`; with `only` (a name as TAP printed it), just the tests of that name. */
function run(file: string, only?: string): { ok: boolean; tap: string } {
  const args = ['--import', 'tsx', '--test', '--test-reporter=tap', '--test-timeout=300000', ...(only ? [`--test-name-pattern=${namePattern(only)}`] : []), file];
  const result = spawnSync(process.execPath, args, { cwd: ROOT, env, encoding: 'utf8', maxBuffer: 64 * 1024 * 1024 });
  // Alone, at least one test must have run: a pattern that matched nothing would pass by skipping everything.
  return { ok: result.status === 0 && (!only || /^# pass [1-9]/m.test(result.stdout)), tap: result.stdout };
}

/** The leaf tests of a TAP run: a `# Subtest:` whose very next line is its result (a suite's subtests come first). */
function leafNames(tap: string): string[] {
  const names: string[] = [];
  const lines = tap.split('\n');
  for (let i = 0; i + 1 < lines.length; i++) {
    const subtest = /^\s*# Subtest: (.*)$/.exec(lines[i]!);
    if (subtest && /^\s*(?:not )?ok \d+ - /.test(lines[i + 1]!)) names.push(subtest[1]!);
  }
  return [...new Set(names)];
}

/**
 * The pattern for a name as the TAP reporter printed it. It escapes `\\`, `#` and control characters, and Node 20
 * does so ambiguously (a tab comes out as a doubled backslash and `t`), so each run of backslashes (with the letter
 * after it) stands for one or two characters; the rest is matched literally, the whole anchored.
 */
function namePattern(tapName: string): string {
  const literal = (text: string) => text.replace(/[.*+?^${}()|[\]\\/]/g, '\\$&');
  return `^${tapName.split(/\\+[#btnrfv]?/).map(literal).join('[\\s\\S]{1,2}')}$`;
}

const files = process.argv.slice(2).length > 0 ? process.argv.slice(2) : testFiles(join(ROOT, 'test')).sort();
const failed: string[] = [];
let count = 0;
for (const file of files) {
  const whole = run(file);
  const names = leafNames(whole.tap);
  console.log(`${file}: ${names.length} tests${whole.ok ? '' : ' (the file as a whole failed)'}`);
  for (const name of names) {
    count++;
    const alone = run(file, name);
    console.log(`  ${alone.ok ? 'ok    ' : 'FAILED'} ${name}`);
    // Why, in a few lines: the failure's error and where (the TAP diagnostics under `not ok`).
    if (!alone.ok) console.log(alone.tap.split('\n').filter((l) => /^\s+(error|location|expected|actual):/.test(l)).slice(0, 6).map((l) => `         ${l.trim()}`).join('\n'));
    if (!alone.ok) failed.push(`${file}: ${name}`);
  }
}
console.log(`\n${count} tests run alone; ${failed.length} failed alone${failed.length ? `:\n  ${failed.join('\n  ')}` : ''}`);
process.exitCode = failed.length > 0 ? 1 : 0;
