// `npm run demo`: passgate with a local OAuth server, upstream SMTP and Dovecot, all on 127.0.0.1, until Ctrl-C.
//
// package.json runs it as `node --import tsx demo/run.ts`, not `tsx demo/run.ts`: the tsx CLI is a parent process
// that re-sends SIGINT and then SIGKILLs its child when the child has not reported the signal within ~60 ms
// (node_modules/tsx/dist/cli.mjs, relaySignals), which would cut the clean stop below short on a busy machine.
import { existsSync, rmSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { demoPrintout, renderPrintout } from './demo-commands.js';
import { startDemo, type DemoStack } from './demo-stack.js';

const USAGE = `usage: npm run demo [-- options]

Starts a local OAuth server, an upstream SMTP server delivering into local mailboxes, Dovecot serving them over
IMAP (when installed), and passgate in front of them, all on 127.0.0.1; creates an app password for
demo@example.com and prints commands that use it. Ctrl-C stops everything and removes the temporary folder.

  --any-ports         listen on any free ports (default: 2587, 2465, 2143, 2993 and ops 9465 when free)
  --without-dovecot   skip Dovecot and IMAP even when Dovecot is installed
  --graph             send through a local Microsoft Graph stand-in instead of SMTP AUTH (docs/graph.md)
  --json              print the facts and commands as one JSON object instead of text
  -h, --help          this help
`;

const root = join(dirname(fileURLToPath(import.meta.url)), '..');
const SIGNALS = ['SIGINT', 'SIGTERM', 'SIGHUP'] as const;

async function main(argv: string[]): Promise<number> {
  const known = new Set(['--any-ports', '--without-dovecot', '--graph', '--json', '--help', '-h']);
  const unknown = argv.filter((arg) => !known.has(arg));
  if (argv.includes('--help') || argv.includes('-h') || unknown.length > 0) {
    if (unknown.length > 0) process.stderr.write(`passgate demo: unknown option ${unknown.join(' ')}\n\n`);
    (unknown.length > 0 ? process.stderr : process.stdout).write(USAGE);
    return unknown.length > 0 ? 2 : 0;
  }
  // Signals that arrive while starting end the demo as soon as it is up (and cleaned up).
  let signalled: NodeJS.Signals | null = null;
  let wake: (() => void) | null = null;
  const onSignal = (signal: NodeJS.Signals) => {
    if (signalled) {
      process.stderr.write('passgate demo: stopping at once\n');
      process.exit(130);
    }
    signalled = signal;
    wake?.();
  };
  for (const signal of SIGNALS) process.on(signal, onSignal);

  let demo: DemoStack;
  try {
    demo = await startDemo({ anyPorts: argv.includes('--any-ports'), withoutDovecot: argv.includes('--without-dovecot'), graph: argv.includes('--graph') });
  } catch (error) {
    process.stderr.write(`passgate demo: could not start: ${(error as Error).message}\n`);
    return 1;
  }
  // The exit hook removes the folder even when a second Ctrl-C cuts the clean stop short.
  const removeDir = () => rmSync(demo.dir, { recursive: true, force: true });
  process.once('exit', removeDir);

  // The built CLI after `npm ci` (its prepare script compiles dist/); the sources through tsx otherwise.
  const cli = existsSync(join(root, 'dist', 'cli.js')) ? 'npx passgate' : 'npx tsx src/cli.ts';
  const printout = demoPrintout(demo, cli);
  if (argv.includes('--json')) {
    const { close: _close, ...facts } = demo;
    process.stdout.write(`${JSON.stringify({ ...facts, sections: printout.sections }, null, 2)}\n`);
  } else {
    process.stdout.write(renderPrintout(printout));
  }

  if (!signalled) await new Promise<void>((resolve) => (wake = resolve));
  process.stderr.write(`passgate demo: ${signalled} received, stopping\n`);
  await demo.close();
  process.stderr.write('passgate demo: stopped, temporary folder removed\n');
  return 0;
}

process.exitCode = await main(process.argv.slice(2));
