import assert from 'node:assert/strict';
import { spawn, spawnSync, type ChildProcess } from 'node:child_process';
import { existsSync, readdirSync, readFileSync } from 'node:fs';
import { delimiter, join, resolve } from 'node:path';
import { createServer } from 'node:net';
import { test } from 'node:test';
import { preferredPort } from '../../demo/preferred-port.js';
import { dovecotPop3Installed } from '../helpers/dovecot-server.js';

const ROOT = resolve(import.meta.dirname, '../..');
const START_TIMEOUT_MS = 120_000;
const COMMAND_TIMEOUT_MS = 60_000;
const STOP_TIMEOUT_MS = 30_000;
const FOOTER = 'The demo runs until Ctrl-C';

function onPath(name: string, extra: string[] = []): boolean {
  return [...(process.env.PATH ?? '').split(delimiter), ...extra].some((dir) => dir && existsSync(join(dir, name)));
}

/** Process ids whose process group is `pgid` (from /proc: field 5 of stat, after the parenthesised name). */
function groupMembers(pgid: number): number[] {
  const members: number[] = [];
  for (const entry of readdirSync('/proc')) {
    if (!/^\d+$/.test(entry)) continue;
    try {
      const stat = readFileSync(`/proc/${entry}/stat`, 'utf8');
      const fields = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
      if (fields[0] !== 'Z' && Number(fields[2]) === pgid) members.push(Number(entry));
    } catch {
      // exited meanwhile
    }
  }
  return members;
}

/** The pid of the process whose command line contains `needle` (Dovecot's master names its config file). */
function pidByCommandLine(needle: string): number | null {
  for (const entry of readdirSync('/proc')) {
    if (!/^\d+$/.test(entry)) continue;
    try {
      if (readFileSync(`/proc/${entry}/cmdline`, 'utf8').includes(needle)) return Number(entry);
    } catch {
      // exited meanwhile
    }
  }
  return null;
}

function signalGroup(pgid: number, signal: NodeJS.Signals): void {
  try {
    process.kill(-pgid, signal);
  } catch {
    // already gone
  }
}

interface RunningDemo {
  child: ChildProcess;
  stdout: string;
  stderr: () => string;
  sections: Map<string, string>;
}

/**
 * `npm run demo`'s command (package.json: `node --import tsx demo/run.ts`), started in its own process group as a
 * terminal starts it, until it has printed everything. Not through npm itself: on Ctrl-C npm exits 130 whatever
 * its script does, which would hide the demo's own exit code.
 */
async function startDemo(args: string[]): Promise<RunningDemo> {
  const script = (JSON.parse(readFileSync(join(ROOT, 'package.json'), 'utf8')) as { scripts: Record<string, string> }).scripts.demo;
  assert.equal(script, 'node --import tsx demo/run.ts');
  const child = spawn(process.execPath, ['--import', 'tsx', 'demo/run.ts', ...args], { cwd: ROOT, detached: true, stdio: ['ignore', 'pipe', 'pipe'] });
  let stdout = '';
  let stderr = '';
  child.stderr!.on('data', (chunk: Buffer) => (stderr += chunk.toString('utf8')));
  await new Promise<void>((resolvePromise, reject) => {
    const timer = setTimeout(() => {
      signalGroup(child.pid!, 'SIGINT'); // let it clean up what it started (Dovecot is in a group of its own)
      reject(new Error(`the demo printed no footer within ${START_TIMEOUT_MS} ms:\n${stdout}\n${stderr}`));
    }, START_TIMEOUT_MS);
    child.stdout!.on('data', (chunk: Buffer) => {
      stdout += chunk.toString('utf8');
      if (stdout.includes(FOOTER)) {
        clearTimeout(timer);
        resolvePromise();
      }
    });
    child.once('exit', (code) => {
      clearTimeout(timer);
      reject(new Error(`the demo exited (${code}) before printing everything:\n${stdout}\n${stderr}`));
    });
  });
  return { child, stdout, stderr: () => stderr, sections: parseSections(stdout) };
}

/** "== N. title ==" headers, each followed by its commands up to the next header or the footer. */
function parseSections(stdout: string): Map<string, string> {
  const sections = new Map<string, string>();
  let title: string | null = null;
  let lines: string[] = [];
  const flush = () => {
    if (title !== null) sections.set(title, lines.join('\n').trim());
  };
  for (const line of stdout.split('\n')) {
    const header = /^== \d+\. (.+) ==$/.exec(line);
    if (header || line.startsWith(FOOTER)) {
      flush();
      title = header ? header[1]! : null;
      lines = [];
    } else if (title !== null) lines.push(line);
  }
  return sections;
}

function section(demo: RunningDemo, prefix: string): string {
  const found = [...demo.sections].find(([title]) => title.startsWith(prefix));
  assert.ok(found, `the demo prints a section "${prefix}..."; it printed: ${[...demo.sections.keys()].join(' | ')}`);
  return found[1];
}

/** Runs printed shell text exactly as printed, from the repository folder (where the demo says to run it). */
function runPrinted(commands: string): { code: number | null; stdout: string; stderr: string } {
  const result = spawnSync('bash', ['-c', commands], { cwd: ROOT, encoding: 'utf8', timeout: COMMAND_TIMEOUT_MS });
  return { code: result.status, stdout: result.stdout, stderr: result.stderr };
}

function assertRan(name: string, result: { code: number | null; stdout: string; stderr: string }): void {
  assert.equal(result.code, 0, `${name} failed (exit ${result.code}):\n${result.stdout}\n${result.stderr}`);
}

/** Ctrl-C: SIGINT to the whole process group, then a clean exit and nothing left behind. */
async function stopDemo(demo: RunningDemo, leftovers: { pgids: number[]; paths: string[] }): Promise<void> {
  const pgid = demo.child.pid!;
  const exited = new Promise<number | null>((resolvePromise) => {
    if (demo.child.exitCode !== null) resolvePromise(demo.child.exitCode);
    else demo.child.once('exit', (code) => resolvePromise(code));
  });
  signalGroup(pgid, 'SIGINT');
  const timer = setTimeout(() => signalGroup(pgid, 'SIGKILL'), STOP_TIMEOUT_MS);
  const code = await exited;
  clearTimeout(timer);
  assert.equal(code, 0, `the demo exits 0 after Ctrl-C:\n${demo.stderr()}`);
  assert.match(demo.stderr(), /stopped, temporary folder removed/);
  for (const group of [pgid, ...leftovers.pgids]) {
    const deadline = Date.now() + 5_000; // the group's last members may still be on their way out
    while (groupMembers(group).length > 0 && Date.now() < deadline) await new Promise((r) => setTimeout(r, 100));
    assert.deepEqual(groupMembers(group), [], `no process of group ${group} is left`);
  }
  for (const path of leftovers.paths) assert.equal(existsSync(path), false, `${path} is removed`);
}

const dovecotInstalled = onPath('dovecot', ['/usr/sbin', '/usr/local/sbin']);
/** swaks speaks TLS only with Net::SSLeay (Debian: libnet-ssleay-perl, a Recommends that --no-install-recommends skips). */
function swaksHasTls(): boolean {
  if (!onPath('swaks')) return false;
  const support = spawnSync('swaks', ['--support'], { encoding: 'utf8' });
  return /^=== TLS supported/m.test(`${support.stdout}${support.stderr}`);
}
const swaksWithTls = swaksHasTls();

test('npm run demo: every printed command works as printed, and Ctrl-C leaves nothing behind', { timeout: 300_000 }, async (t) => {
  assert.ok(onPath('curl') && onPath('python3'), 'curl and python3 are on PATH');
  const demo = await startDemo(['--any-ports']);
  const dir = /removes (\S+)\.$/m.exec(demo.stdout)?.[1];
  const mailbox = /demo@example\.com's mail: (\S+)$/m.exec(demo.stdout)?.[1];
  const dovecotDir = mailbox ? /^(\/.*passgate-dovecot-[^/]+)\//.exec(mailbox)?.[1] : undefined;
  const dovecotPid = dovecotDir ? pidByCommandLine(join(dovecotDir, 'dovecot.conf')) : null;
  try {
    assert.ok(dir && mailbox, demo.stdout);
    assert.match(demo.stdout, /^ {4}[a-z]{4}(-[a-z]{4}){3}$/m, 'the app password is printed once, grouped');
    assertRan('curl (SMTP)', runPrinted(section(demo, 'Send a mail with curl')));
    if (swaksWithTls) assertRan('swaks', runPrinted(section(demo, 'Send a mail with swaks')));
    else if (process.env['CI']) assert.fail('swaks with TLS is not installed (swaks, libnet-ssleay-perl): CI must install it (.ci/apt-packages)');
    else t.diagnostic('swaks with TLS is not installed (swaks, libnet-ssleay-perl): its command was not run');
    const python = runPrinted(section(demo, 'Send a mail with Python'));
    assertRan('python (smtplib)', python);
    assert.match(python.stdout, /^sent$/m);

    if (dovecotInstalled) {
      assert.ok(dovecotPid, 'Dovecot runs');
      assert.ok(groupMembers(dovecotPid).length > 1, 'Dovecot has children to clean up');
      const list = runPrinted(section(demo, 'Read the mailbox with Python'));
      assertRan('python (imaplib)', list);
      assert.match(list.stdout, /^1 Subject: Hello from curl through passgate$/m);
      assert.match(list.stdout, /Subject: Hello from Python through passgate/);
      if (swaksWithTls) assert.match(list.stdout, /Subject: Hello from swaks through passgate/);
      const fetched = runPrinted(section(demo, 'Fetch the first message with curl'));
      assertRan('curl (IMAP)', fetched);
      assert.match(fetched.stdout, /^Subject: Hello from curl through passgate\r?$/m);
      if (dovecotPop3Installed()) {
        const popped = runPrinted(section(demo, 'Fetch the first message with curl (POP3'));
        assertRan('curl (POP3)', popped);
        assert.match(popped.stdout, /^Subject: Hello from curl through passgate\r?$/m);
      }
    } else {
      assert.ok(!process.env['CI'], 'Dovecot is not installed: CI must install it (.ci/apt-packages)');
      assert.match(demo.stdout, /Dovecot is not installed: IMAP part skipped; apt-get install dovecot-imapd/);
    }

    const portal = runPrinted(section(demo, 'Open the portal'));
    assertRan('portal (curl)', portal);
    assert.match(portal.stdout, /^Sign in with your company account$/m);

    const logFile = /passgate log +(\S+)$/m.exec(demo.stdout)?.[1];
    const password = /^ {4}([a-z]{4}(?:-[a-z]{4}){3})$/m.exec(demo.stdout)![1]!;
    const log = readFileSync(logFile!, 'utf8');
    assert.match(log, /"msg":"passgate started"/);
    assert.ok(!log.includes(password) && !log.includes(password.replaceAll('-', '')), 'the app password is never logged');

    const ops = runPrinted(section(demo, 'Watch passgate'));
    assertRan('ops and audit', ops);
    assert.match(ops.stdout, /"ready":true/);
    assert.match(ops.stdout, /^passgate_auth_attempts_total\{protocol="smtp",result="success",reason="ok"\} [1-9]/m);
    assert.match(ops.stdout, /login +smtp +demo@example\.com +127\.0\.0\.1 +npm run demo/);
    if (dovecotInstalled) assert.match(ops.stdout, /login +imap +demo@example\.com/);
  } finally {
    await stopDemo(demo, { pgids: dovecotPid ? [dovecotPid] : [], paths: [...(dir ? [dir] : []), ...(dovecotDir ? [dovecotDir] : [])] });
  }
});

test('npm run demo --without-dovecot: says IMAP is skipped, and SMTP delivers into the folder it names', { timeout: 300_000 }, async () => {
  const demo = await startDemo(['--any-ports', '--without-dovecot']);
  const dir = /removes (\S+)\.$/m.exec(demo.stdout)?.[1];
  try {
    assert.match(demo.stdout, /IMAP part skipped/);
    assert.doesNotMatch([...demo.sections.values()].join('\n'), /imaps:|imaplib/, 'no IMAP command is printed');
    assertRan('curl (SMTP)', runPrinted(section(demo, 'Send a mail with curl')));
    const listing = runPrinted(section(demo, 'See the delivered mail'));
    assertRan('ls', listing);
    assert.match(listing.stdout, /\.eml$/m);
  } finally {
    await stopDemo(demo, { pgids: [], paths: dir ? [dir] : [] });
  }
});

test('npm run demo --graph: passgate sends through the Graph stand-in, which delivers into the folder it names', { timeout: 300_000 }, async () => {
  const demo = await startDemo(['--any-ports', '--without-dovecot', '--graph']);
  const dir = /removes (\S+)\.$/m.exec(demo.stdout)?.[1];
  try {
    assert.match(demo.stdout, /Microsoft Graph http:\/\/127\.0\.0\.1:\d+\/v1\.0 \(a stand-in/);
    assert.doesNotMatch(demo.stdout, /upstream SMTP/);
    assertRan('curl (SMTP → Graph)', runPrinted(section(demo, 'Send a mail with curl')));
    assertRan('python (SMTP → Graph)', runPrinted(section(demo, 'Send a mail with Python')));
    const listing = runPrinted(section(demo, 'See the delivered mail'));
    assertRan('ls', listing);
    assert.equal(listing.stdout.split('\n').filter((line) => line.endsWith('.eml')).length, 2, listing.stdout);
  } finally {
    await stopDemo(demo, { pgids: [], paths: dir ? [dir] : [] });
  }
});

test('npm run demo -- --help runs the script and explains the options', () => {
  const result = spawnSync('npm', ['run', '--silent', 'demo', '--', '--help'], { cwd: ROOT, encoding: 'utf8', timeout: COMMAND_TIMEOUT_MS });
  assert.equal(result.status, 0, result.stderr);
  assert.match(result.stdout, /--any-ports/);
  assert.match(result.stdout, /--without-dovecot/);
  assert.match(result.stdout, /--graph/);
  const wrong = spawnSync('npm', ['run', '--silent', 'demo', '--', '--no-such-option'], { cwd: ROOT, encoding: 'utf8', timeout: COMMAND_TIMEOUT_MS });
  assert.notEqual(wrong.status, 0);
  assert.match(wrong.stderr, /unknown option --no-such-option/);
});

test('the demo keeps its fixed port when it is free and takes any free port when it is not', async () => {
  const holder = createServer().listen(0, '127.0.0.1');
  await new Promise((r) => holder.once('listening', r));
  const taken = (holder.address() as { port: number }).port;
  try {
    assert.equal(await preferredPort(taken), 0);
  } finally {
    await new Promise((r) => holder.close(r));
  }
  assert.equal(await preferredPort(taken), taken);
});
