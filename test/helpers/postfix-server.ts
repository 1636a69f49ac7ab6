import { spawn, spawnSync, type ChildProcess } from 'node:child_process';
import { existsSync, watch } from 'node:fs';
import { chmod, chown, mkdir, mkdtemp, readdir, readFile, rm, writeFile } from 'node:fs/promises';
import { connect } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { DovecotServer } from './dovecot-server.js';
import { freePort } from './redis-server.js';

export interface PostfixServerOptions {
  /** RFC 7662 introspection endpoint of the test OAuth server: Dovecot checks every XOAUTH2 token there. */
  introspectionUrl: string;
  /** PEM key and certificate for STARTTLS. */
  key: string;
  cert: string;
  /** main.cf settings appended (later settings win), e.g. `smtpd_discard_ehlo_keywords = chunking`. */
  extraMainCf?: string[];
  /** Discard every accepted message after the queue instead of writing it to a file (the benchmarks; accepted()). */
  discard?: boolean;
}

/** A delivered message: its queue id and the bytes the pipe got (Postfix's Received header first). */
export interface PostfixDelivery {
  queueId: string;
  raw: Buffer;
}

const START_TIMEOUT_MS = 20_000;

/** Masters not yet stopped, killed (with their daemons) if the test process exits or is signalled without stop(). */
const live = new Set<number>();
let exitHookInstalled = false;

function installExitHook(): void {
  if (exitHookInstalled) return;
  exitHookInstalled = true;
  const killAll = () => {
    for (const pgid of live) kill(pgid, 'SIGKILL');
  };
  process.once('exit', killAll);
  // The master has its own process group, so a Ctrl-C or a runner's SIGTERM would not reach it: pass it on, then
  // let the signal do what it would have done.
  for (const signal of ['SIGINT', 'SIGTERM', 'SIGHUP'] as const) {
    const onSignal = () => {
      killAll();
      process.removeListener(signal, onSignal);
      if (process.listenerCount(signal) === 0) process.kill(process.pid, signal);
    };
    process.on(signal, onSignal);
  }
}

/** Signals a process group (the master's: it and its daemons). */
function kill(pgid: number, signal: NodeJS.Signals): void {
  try {
    process.kill(-pgid, signal);
  } catch {
    // already gone
  }
}

/** Postfix's queue folders (postfix-files): owner postfix and mode, maildrop and public group postdrop. */
const QUEUE_DIRS: [string, number, boolean][] = [
  ['active', 0o700, false],
  ['bounce', 0o700, false],
  ['corrupt', 0o700, false],
  ['defer', 0o700, false],
  ['deferred', 0o700, false],
  ['flush', 0o700, false],
  ['hold', 0o700, false],
  ['incoming', 0o700, false],
  ['private', 0o700, false],
  ['saved', 0o700, false],
  ['trace', 0o700, false],
  ['maildrop', 0o1730, true],
  ['public', 0o710, true],
];

/** Whether Debian's postfix is installed (the tests that need it say so when it is not). */
export function postfixInstalled(): boolean {
  return existsSync('/usr/sbin/postfix') && existsSync('/usr/lib/postfix/sbin/master');
}

function groupId(name: string): number {
  const line = spawnSync('getent', ['group', name], { encoding: 'utf8' });
  if (line.status !== 0) throw new Error(`PostfixServer: no group ${name} (apt-get install postfix creates it)`);
  return Number(line.stdout.split(':')[2]);
}

function uidOf(name: string): { uid: number; gid: number } {
  const result = spawnSync('id', ['-u', name], { encoding: 'utf8' });
  const gid = spawnSync('id', ['-g', name], { encoding: 'utf8' });
  if (result.status !== 0 || gid.status !== 0) throw new Error(`PostfixServer: no user ${name} (apt-get install postfix creates it)`);
  return { uid: Number(result.stdout.trim()), gid: Number(gid.stdout.trim()) };
}

/**
 * A real Postfix (Debian's postfix, 3.x) as a submission server on 127.0.0.1, standing in for Exchange Online where
 * smtp-server cannot: it offers CHUNKING (RFC 3030 BDAT) and PIPELINING. STARTTLS, then AUTH through Dovecot SASL,
 * which offers XOAUTH2 and checks each token at the test OAuth server (test/helpers/dovecot-server.ts's oauth2
 * passdb, reached over a Dovecot auth socket in Postfix's folder). Every accepted message is delivered by a pipe
 * transport into a file per message (out/<queue id>), which the test reads back.
 *
 * Everything lives in one temporary folder: its own main.cf and master.cf (`postfix -c`), queue, data, log. It
 * needs root (Postfix's master starts as root and runs its daemons as `postfix`); CI runs as root.
 */
export class PostfixServer {
  private child: ChildProcess | null = null;
  private readonly output: string[] = [];
  private stopping: Promise<void> | null = null;

  private constructor(
    readonly dir: string,
    readonly port: number,
    readonly dovecot: DovecotServer,
  ) {}

  static async start(options: PostfixServerOptions): Promise<PostfixServer> {
    if (process.getuid?.() !== 0) throw new Error('PostfixServer: needs root (the master starts as root, its daemons run as postfix)');
    const dir = await mkdtemp(join(tmpdir(), 'passgate-postfix-'));
    await chmod(dir, 0o755);
    const authSocket = join(dir, 'dovecot-auth');
    const { uid: postfixUid, gid: postfixGid } = uidOf('postfix');
    // Dovecot's SASL socket for Postfix's smtpd (which runs as postfix): XOAUTH2 and OAUTHBEARER, checked by the
    // same oauth2 passdb chain as IMAP.
    const dovecot = await DovecotServer.start({
      introspectionUrl: options.introspectionUrl,
      users: [],
      pop3: false,
      extraConfig: `service auth {\n  unix_listener ${authSocket} {\n    mode = 0660\n    user = postfix\n    group = postfix\n  }\n}\n`,
    });
    const server = new PostfixServer(dir, await freePort(), dovecot);
    try {
      await server.prepare(options, authSocket, postfixUid, postfixGid);
      await server.launch();
      return server;
    } catch (error) {
      await server.stop();
      throw error;
    }
  }

  /** Messages delivered so far, in the order of their files' queue ids (not necessarily arrival). */
  async deliveries(): Promise<PostfixDelivery[]> {
    const out = join(this.dir, 'out');
    const names = (await readdir(out)).filter((n) => !n.endsWith('.done'));
    return Promise.all(names.map(async (queueId) => ({ queueId, raw: await readFile(join(out, queueId)) })));
  }

  /** The delivered message with this queue id (from passgate's "250 2.0.0 Ok: queued as <id>"), waiting for it. */
  async delivery(queueId: string, timeoutMs = 10_000): Promise<Buffer> {
    const path = join(this.dir, 'out', queueId);
    const done = join(this.dir, 'out', `${queueId}.done`);
    // The pipe writes the file, then its marker: delivery is asynchronous after the 250 (the queue manager).
    const watcher = watch(join(this.dir, 'out'));
    try {
      if (!existsSync(done)) {
        await new Promise<void>((resolve, reject) => {
          const timer = setTimeout(() => void this.log().then((log) => reject(new Error(`PostfixServer: ${queueId} not delivered within ${timeoutMs} ms; log: ${log}`))), timeoutMs);
          const check = () => existsSync(done) && (clearTimeout(timer), resolve());
          watcher.on('change', check);
          check();
        });
      }
    } finally {
      watcher.close();
    }
    return readFile(path);
  }

  /** Resolves with Postfix's log once it matches `pattern` (bounded: 10 s), read again whenever the file changes. */
  async waitForLog(pattern: RegExp, timeoutMs = 10_000): Promise<string> {
    const watcher = watch(this.logPath);
    try {
      let log = await this.log();
      if (pattern.test(log)) return log;
      return await new Promise<string>((resolve, reject) => {
        const timer = setTimeout(() => reject(new Error(`PostfixServer: log never matched ${pattern}:\n${log}`)), timeoutMs);
        watcher.on('change', () => {
          void this.log().then((text) => {
            log = text;
            if (!pattern.test(text)) return;
            clearTimeout(timer);
            resolve(text);
          });
        });
      });
    } finally {
      watcher.close();
    }
  }

  private get logPath(): string {
    return join(this.dir, 'maillog');
  }

  /** Messages accepted so far (each a `queued as` in smtpd's replies: counted from cleanup's log lines). */
  async accepted(): Promise<number> {
    return (await this.log()).split('\n').filter((line) => /postfix\/cleanup\[\d+\]: [0-9A-F]+: message-id=/.test(line)).length;
  }

  /** What Postfix logged so far (and its master said on stdout and stderr). */
  async log(): Promise<string> {
    return (await readFile(this.logPath, 'utf8').catch(() => '')) + this.output.join('');
  }

  /** Stops Postfix and Dovecot and removes the folder. Idempotent. */
  async stop(): Promise<void> {
    this.stopping ??= this.shutdown();
    return this.stopping;
  }

  private async shutdown(): Promise<void> {
    const child = this.child;
    if (child?.pid !== undefined && child.exitCode === null) {
      // SIGTERM to the master ends it and its daemons (they are in its process group); SIGKILL after 5 s.
      const exited = new Promise((r) => child.once('exit', r));
      kill(child.pid, 'SIGTERM');
      const timer = setTimeout(() => kill(child.pid!, 'SIGKILL'), 5000);
      await exited;
      clearTimeout(timer);
      kill(child.pid, 'SIGKILL'); // daemons that outlived their master
      live.delete(child.pid);
    }
    await this.dovecot.stop();
    await rm(this.dir, { recursive: true, force: true });
  }

  private async prepare(options: PostfixServerOptions, authSocket: string, postfixUid: number, postfixGid: number): Promise<void> {
    const { dir } = this;
    for (const sub of ['spool', 'spool/pid', 'data', 'tls']) await mkdir(join(dir, sub), { mode: 0o755 });
    await chown(join(dir, 'data'), postfixUid, postfixGid);
    const postdrop = groupId('postdrop');
    for (const [name, mode, dropGroup] of QUEUE_DIRS) {
      const path = join(dir, 'spool', name);
      await mkdir(path);
      await chown(path, postfixUid, dropGroup ? postdrop : postfixGid);
      await chmod(path, mode);
    }
    // The pipe runs as nobody and writes one file per message here.
    await mkdir(join(dir, 'out'), { mode: 0o777 });
    await chmod(join(dir, 'out'), 0o777);
    await writeFile(join(dir, 'maillog'), '');
    await writeFile(join(dir, 'tls', 'key.pem'), options.key, { mode: 0o600 });
    await writeFile(join(dir, 'tls', 'cert.pem'), options.cert, { mode: 0o644 });
    await writeFile(
      join(dir, 'deliver.sh'),
      // $1: the queue id. The marker tells the test the file is complete.
      `#!/bin/sh\ncat > "${dir}/out/$1" && : > "${dir}/out/$1.done"\n`,
      { mode: 0o755 },
    );
    const main = [
      'compatibility_level = 3.6',
      `queue_directory = ${dir}/spool`,
      `data_directory = ${dir}/data`,
      'mail_owner = postfix',
      'setgid_group = postdrop',
      // Logged to the master's stdout, which launch() collects (log()): no syslog needed.
      // Logged to a file in the folder (log(), waitForLog()) by postlogd: no syslog needed.
      `maillog_file = ${dir}/maillog`,
      `maillog_file_prefixes = ${dir}`,
      'myhostname = postfix.test',
      'mydomain = postfix.test',
      'myorigin = postfix.test',
      'mydestination =',
      'inet_interfaces = 127.0.0.1',
      'inet_protocols = ipv4',
      'mynetworks = 127.0.0.1/32',
      'alias_maps =',
      'alias_database =',
      // Every recipient goes to the pipe (no DNS, no relaying anywhere).
      ...['default_transport', 'relay_transport', 'local_transport'].map((key) => `${key} = ${options.discard ? 'discard' : 'fileout'}`),
      'fileout_destination_recipient_limit = 1',
      'disable_dns_lookups = yes',
      'smtp_dns_support_level = disabled',
      // The bytes as the client sent them: no header rewriting, no MIME conversion.
      'local_header_rewrite_clients =',
      'disable_mime_output_conversion = yes',
      // Submission: TLS first, then AUTH (Dovecot SASL, XOAUTH2 against the OAuth server), then anything.
      'smtpd_tls_security_level = may',
      `smtpd_tls_cert_file = ${dir}/tls/cert.pem`,
      `smtpd_tls_key_file = ${dir}/tls/key.pem`,
      'smtpd_tls_auth_only = yes',
      'smtpd_sasl_auth_enable = yes',
      'smtpd_sasl_type = dovecot',
      `smtpd_sasl_path = ${authSocket}`,
      'smtpd_relay_restrictions = permit_sasl_authenticated, reject',
      'smtpd_recipient_restrictions = permit_sasl_authenticated, reject',
      'smtpd_client_connection_rate_limit = 0',
      'smtpd_client_message_rate_limit = 0',
      'anvil_rate_time_unit = 60s',
      'smtpd_error_sleep_time = 0',
      'smtpd_soft_error_limit = 1000',
      'smtpd_hard_error_limit = 1000',
      'in_flow_delay = 0',
      'queue_run_delay = 1s',
      'message_size_limit = 157286400',
      'biff = no',
      ...(options.extraMainCf ?? []),
      '',
    ];
    await writeFile(join(dir, 'main.cf'), main.join('\n'));
    const master = [
      `127.0.0.1:${this.port} inet n - n - - smtpd`,
      'cleanup unix n - n - 0 cleanup',
      'qmgr unix n - n 300 1 qmgr',
      'tlsmgr unix - - n 1000? 1 tlsmgr',
      'rewrite unix - - n - - trivial-rewrite',
      'bounce unix - - n - 0 bounce',
      'defer unix - - n - 0 bounce',
      'trace unix - - n - 0 bounce',
      'verify unix - - n - 1 verify',
      'flush unix n - n 1000? 0 flush',
      'proxymap unix - - n - - proxymap',
      'smtp unix - - n - - smtp',
      'showq unix n - n - - showq',
      'error unix - - n - - error',
      'retry unix - - n - - error',
      'discard unix - - n - - discard',
      'anvil unix - - n - 1 anvil',
      'scache unix - - n - 1 scache',
      'postlog unix-dgram n - n - 1 postlogd',
      `fileout unix - n n - - pipe flags= user=nobody argv=${dir}/deliver.sh \${queue_id}`,
      '',
    ];
    await writeFile(join(dir, 'master.cf'), master.join('\n'));
  }

  private async launch(): Promise<void> {
    const output = this.output;
    // The master itself, in the foreground (-d), with this folder's configuration: `postfix start` would first run
    // postfix-script's checks, which log a warning per file of a queue not owned by root (seconds each start).
    // POSTLOG_*: what postfix(1) exports so that the master and its daemons log through postlogd to maillog_file.
    const env = { ...process.env, POSTLOG_SERVICE: 'postlog', POSTLOG_HOSTNAME: 'postfix.test' };
    const child = spawn('/usr/lib/postfix/sbin/master', ['-d', '-c', this.dir], { detached: true, stdio: ['ignore', 'pipe', 'pipe'], env });
    this.child = child;
    if (child.pid !== undefined) {
      live.add(child.pid);
      installExitHook();
    }
    child.stdout!.on('data', (c: Buffer) => output.push(c.toString()));
    child.stderr!.on('data', (c: Buffer) => output.push(c.toString()));
    const deadline = Date.now() + START_TIMEOUT_MS;
    for (;;) {
      if (child.exitCode !== null) throw new Error(`PostfixServer: postfix exited ${child.exitCode}: ${output.join('')} ${await this.log()}`);
      if (await this.greets()) return;
      if (Date.now() > deadline) throw new Error(`PostfixServer: no greeting within ${START_TIMEOUT_MS} ms: ${output.join('')} ${await this.log()}`);
      await new Promise((r) => setTimeout(r, 50));
    }
  }

  private greets(): Promise<boolean> {
    return new Promise((resolve) => {
      const socket = connect(this.port, '127.0.0.1');
      socket.setTimeout(1000, () => (socket.destroy(), resolve(false)));
      socket.once('data', (chunk: Buffer) => {
        socket.end('QUIT\r\n');
        resolve(chunk.toString().startsWith('220 '));
      });
      socket.once('error', () => resolve(false));
    });
  }
}
