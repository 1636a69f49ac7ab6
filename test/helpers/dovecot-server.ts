import { spawn, type ChildProcess } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { existsSync, readFileSync, rmSync } from 'node:fs';
import { chmod, chown, mkdir, mkdtemp, open, readFile, rename, rm, writeFile } from 'node:fs/promises';
import { connect } from 'node:net';
import { tmpdir, userInfo } from 'node:os';
import { connect as tlsConnect } from 'node:tls';
import { delimiter, join } from 'node:path';
import { generateSelfSignedCertificate } from '../../src/tls/self-signed-certificate.js';
import { freePort } from './redis-server.js';

export interface DovecotServerOptions {
  /** RFC 7662 introspection endpoint (POST token=...) that validates the access tokens. */
  introspectionUrl: string;
  /** Mailboxes whose maildirs exist from the start (any other name can still log in with an app-only token). */
  users: string[];
  /** PEM key and certificate for both listeners; a self-signed pair for 127.0.0.1/localhost when not given. */
  key?: string;
  cert?: string;
  /** Dovecot settings appended to the generated configuration (later settings win), e.g. service limits. */
  extraConfig?: string;
  /** Serve POP3 too (needs Debian's dovecot-pop3d); by default when it is installed. */
  pop3?: boolean;
}

/** Whether Dovecot's POP3 server (Debian's dovecot-pop3d) is installed next to its IMAP server. */
export function dovecotPop3Installed(): boolean {
  return ['/usr/lib/dovecot/pop3', '/usr/libexec/dovecot/pop3', '/usr/local/libexec/dovecot/pop3'].some((path) => existsSync(path));
}

/** IMAP system flags a delivered message may carry (as Maildir info letters). */
export type DeliveryFlag = '\\Draft' | '\\Flagged' | '\\Answered' | '\\Seen' | '\\Deleted';

const MAILDIR_LETTERS: Record<DeliveryFlag, string> = {
  '\\Draft': 'D',
  '\\Flagged': 'F',
  '\\Answered': 'R',
  '\\Seen': 'S',
  '\\Deleted': 'T',
};

const START_TIMEOUT_MS = 15_000;
const STOP_TIMEOUT_MS = 5_000;

/** Servers not yet stopped, killed if the test process exits or is signalled without stop() (a crash, Ctrl-C). */
const live = new Set<DovecotServer>();
let exitHookInstalled = false;

interface Identity {
  /** Owner of the mail files (the userdb's uid/gid). */
  uid: number;
  gid: number;
  root: boolean;
  /** Settings that make Dovecot run entirely as the current (unprivileged) user. */
  extraConfig: string;
}

/** A line of /etc/passwd or /etc/group whose first field is `name`, split on ':'. */
function lookUp(file: string, name: string): string[] | undefined {
  try {
    return readFileSync(file, 'utf8')
      .split('\n')
      .map((line) => line.split(':'))
      .find((fields) => fields[0] === name);
  } catch {
    return undefined;
  }
}

function groupName(gid: number): string {
  try {
    const line = readFileSync('/etc/group', 'utf8')
      .split('\n')
      .map((l) => l.split(':'))
      .find((fields) => fields[2] === String(gid));
    if (line?.[0]) return line[0];
  } catch {
    // fall through
  }
  throw new Error(`DovecotServer: no name for group ${gid} in /etc/group (Dovecot needs one for default_internal_group)`);
}

function identity(): Identity {
  const uid = process.getuid?.() ?? -1;
  if (uid === 0) {
    // Dovecot refuses to run mail processes as root (uid 0 < first_valid_uid). The Debian package's own accounts
    // (dovecot, dovenull) are for its internal and login processes and must not own mail, so the mail belongs to
    // `nobody:nogroup`, which exists on every Debian system; the master and internal services keep their
    // packaged users (default_internal_user = dovecot, default_login_user = dovenull).
    const nobody = lookUp('/etc/passwd', 'nobody');
    const nogroup = lookUp('/etc/group', 'nogroup');
    return {
      uid: Number(nobody?.[2] ?? 65534),
      gid: Number(nogroup?.[2] ?? nobody?.[3] ?? 65534),
      root: true,
      extraConfig: '',
    };
  }
  // Not root (a developer machine): the rootless setup of Dovecot's HowTo.Rootless: every service runs as the
  // current user, nothing is chrooted, and the ports are above 1024 anyway.
  const gid = process.getgid?.() ?? 0;
  const user = userInfo().username;
  const group = groupName(gid);
  return {
    uid,
    gid,
    root: false,
    extraConfig: [
      `default_internal_user = ${user}`,
      `default_internal_group = ${group}`,
      `default_login_user = ${user}`,
      `first_valid_uid = ${uid}`,
      `last_valid_uid = ${uid}`,
      `first_valid_gid = ${gid}`,
      'service anvil {\n  chroot =\n}',
      'service imap-login {\n  chroot =\n}',
      'service ipc {\n  chroot =\n}',
      'service old-stats {\n  chroot =\n}',
      'service auth-worker {\n  user = $default_internal_user\n}',
      '',
    ].join('\n'),
  };
}

function dovecotBinary(): string {
  if (process.env.DOVECOT_BIN) return process.env.DOVECOT_BIN;
  // /usr/sbin is often missing from a developer's PATH.
  const dirs = [...(process.env.PATH ?? '').split(delimiter), '/usr/sbin', '/usr/local/sbin'];
  for (const dir of dirs) {
    if (dir && existsSync(join(dir, 'dovecot'))) return join(dir, 'dovecot');
  }
  throw new Error('DovecotServer: no dovecot binary (apt-get install dovecot-imapd; see .ci/apt-packages)');
}

/** Dovecot's %u for a login name (auth_username_format = %Lu lowercases it). */
function mailboxName(user: string): string {
  const name = user.toLowerCase();
  if (!/^[^/\s]+$/.test(name) || name === '.' || name === '..') {
    throw new Error(`DovecotServer: unusable mailbox name ${JSON.stringify(user)}`);
  }
  return name;
}

/**
 * Whether Dovecot answers on the port with its IMAP greeting (over TLS for the implicit-TLS port, which also
 * proves the key and certificate work). `error` is set when it answered but not as expected.
 */
async function greets(port: number, tls: boolean, timeoutMs: number, greeting = '* OK'): Promise<{ ok: boolean; error?: string }> {
  return new Promise((resolve) => {
    const socket = tls ? tlsConnect({ host: '127.0.0.1', port, rejectUnauthorized: false }) : connect(port, '127.0.0.1');
    let connected = false;
    let text = '';
    const done = (result: { ok: boolean; error?: string }) => {
      clearTimeout(timer);
      socket.destroy();
      resolve(result);
    };
    const timer = setTimeout(() => done({ ok: false, error: `no greeting within ${timeoutMs} ms` }), timeoutMs);
    socket.once(tls ? 'secureConnect' : 'connect', () => (connected = true));
    socket.on('data', (chunk: Buffer) => {
      text += chunk.toString('latin1');
      if (text.includes('\r\n')) done(text.startsWith(greeting) ? { ok: true } : { ok: false, error: `greeting: ${text.trim()}` });
    });
    socket.once('error', (error: Error) =>
      // Refused: not listening yet. Anything after the TCP connection was made (a TLS failure) is a real error.
      done(connected || (error as NodeJS.ErrnoException).code !== 'ECONNREFUSED' ? { ok: false, error: error.message } : { ok: false }),
    );
  });
}

function processGroupAlive(pid: number): boolean {
  try {
    process.kill(-pid, 0);
    return true;
  } catch {
    return false;
  }
}

function killGroup(pid: number, signal: NodeJS.Signals): void {
  try {
    process.kill(-pid, signal);
  } catch {
    // already gone
  }
}

/**
 * A real Dovecot IMAP and POP3 server (Debian's dovecot-imapd and dovecot-pop3d, 2.3) on 127.0.0.1 for end-to-end tests. It has its own
 * configuration, base_dir, state, log and maildirs under one temporary folder, and accepts only OAuth 2.0 access
 * tokens (XOAUTH2, OAUTHBEARER; no PLAIN/LOGIN), which it checks at an RFC 7662 introspection endpoint on every login
 * (no auth cache):
 *
 * - a delegated token (username = a mailbox) opens only that mailbox;
 * - an app-only token (sub = "app") opens any mailbox (like Exchange's full_access_as_app);
 * - an inactive token fails with the XOAUTH2 error challenge and then NO [AUTHENTICATIONFAILED];
 * - an unreachable introspection endpoint gives NO [UNAVAILABLE].
 *
 * Listeners: `imapPort` (plain, STARTTLS) and `imapsPort` (implicit TLS); POP3 with the same passdb on `pop3Port`
 * (plain, STLS) and `pop3sPort` (implicit TLS).
 */
export class DovecotServer {
  private child: ChildProcess | null = null;
  private stopping: Promise<void> | null = null;
  private exited: Promise<void> = Promise.resolve();
  private deliveries = 0;
  private stderr = '';

  private constructor(
    /** The temporary folder holding everything. */
    readonly dir: string,
    readonly imapPort: number,
    readonly imapsPort: number,
    /** POP3 with the same passdb (Debian's dovecot-pop3d): plain with STLS, and implicit TLS; unused unless `pop3`. */
    readonly pop3Port: number,
    readonly pop3sPort: number,
    /** Whether POP3 is served (options.pop3, by default whether dovecot-pop3d is installed). */
    readonly pop3: boolean,
    /** The server certificate (PEM), for clients to trust. */
    readonly cert: string,
    private readonly mailUid: number,
    private readonly mailGid: number,
    private readonly chownFiles: boolean,
  ) {}

  get logPath(): string {
    return join(this.dir, 'dovecot.log');
  }

  /** Dovecot's master pid (also its process group). */
  get pid(): number | undefined {
    return this.child?.pid;
  }

  static async start(options: DovecotServerOptions): Promise<DovecotServer> {
    const binary = dovecotBinary();
    const id = identity();
    if ((options.key === undefined) !== (options.cert === undefined)) {
      throw new Error('DovecotServer: give both key and cert, or neither');
    }
    const pair =
      options.key !== undefined && options.cert !== undefined
        ? { key: options.key, cert: options.cert }
        : await generateSelfSignedCertificate({ commonName: 'localhost', dnsNames: ['localhost'], ipAddresses: ['127.0.0.1'] });
    const users = [...new Set(options.users.map(mailboxName))];

    // A port picked by freePort() can, rarely, be taken by someone else before Dovecot binds it: try again then.
    let lastError: Error | undefined;
    for (let attempt = 0; attempt < 3; attempt++) {
      const dir = await mkdtemp(join(tmpdir(), 'passgate-dovecot-'));
      const server = new DovecotServer(dir, await freePort(), await freePort(), await freePort(), await freePort(), options.pop3 ?? dovecotPop3Installed(), pair.cert, id.uid, id.gid, id.root);
      try {
        await server.prepare(options.introspectionUrl, pair, users, id, options.extraConfig ?? '');
        await server.launch(binary);
        return server;
      } catch (error) {
        lastError = error as Error;
        await server.stop();
        if (!/Address already in use/i.test(lastError.message)) throw lastError;
      }
    }
    throw lastError!;
  }

  /** The user's Maildir (also the INBOX): cur/, new/, tmp/. */
  maildir(user: string): string {
    return join(this.dir, 'mail', mailboxName(user));
  }

  /**
   * Drops a message into the user's INBOX the way an MDA does: written and fsynced under tmp/, then renamed into
   * new/ (or into cur/ with the Maildir info ":2,<letters>" when flags are given, since new/ carries none). Dovecot
   * notices it on its next sync, and a client in IDLE is told within about a second (inotify, or the 1-second
   * mailbox_idle_check_interval). Returns the file's final path.
   */
  async deliver(user: string, rawMessage: Buffer, flags: readonly DeliveryFlag[] = []): Promise<string> {
    const maildir = this.maildir(user);
    await this.ensureMaildir(maildir);
    const now = Date.now();
    const unique = `${Math.floor(now / 1000)}.M${(now % 1000) * 1000}P${process.pid}Q${++this.deliveries}R${randomBytes(4).toString('hex')}.passgate-test`;
    const staged = join(maildir, 'tmp', unique);
    const file = await open(staged, 'wx', 0o600);
    try {
      await file.writeFile(rawMessage);
      await file.sync();
    } finally {
      await file.close();
    }
    if (this.chownFiles) await chown(staged, this.mailUid, this.mailGid);
    const letters = [...new Set(flags.map((flag) => MAILDIR_LETTERS[flag]))].sort().join('');
    const target = flags.length > 0 ? join(maildir, 'cur', `${unique}:2,${letters}`) : join(maildir, 'new', unique);
    await rename(staged, target);
    return target;
  }

  /** Dovecot's log so far (all of it: errors, info, and debug lines when DOVECOT_DEBUG is set). */
  async log(): Promise<string> {
    return readFile(this.logPath, 'utf8').catch(() => '');
  }

  /**
   * A crash: SIGKILL to Dovecot's whole process group (master, login and imap processes), keeping the folder, the
   * mail and the ports, so restart() brings the same server back. Connections drop without a BYE.
   */
  async kill(): Promise<void> {
    const pid = this.child?.pid;
    if (pid === undefined) return;
    killGroup(pid, 'SIGKILL');
    await this.exited;
    const deadline = Date.now() + STOP_TIMEOUT_MS;
    while (processGroupAlive(pid) && Date.now() < deadline) {
      killGroup(pid, 'SIGKILL');
      await new Promise((r) => setTimeout(r, 20));
    }
  }

  /** Starts Dovecot again after kill(), on the same ports with the same configuration and mail. */
  async restart(): Promise<void> {
    await this.launch(dovecotBinary());
  }

  /** Stops Dovecot (SIGTERM to its process group, SIGKILL after 5 s) and removes the folder. Idempotent. */
  async stop(): Promise<void> {
    this.stopping ??= this.shutdown();
    return this.stopping;
  }

  private async shutdown(): Promise<void> {
    live.delete(this);
    const pid = this.child?.pid;
    if (pid !== undefined && this.child!.exitCode === null && this.child!.signalCode === null) {
      killGroup(pid, 'SIGTERM');
      const timer = new Promise<'timeout'>((resolve) => setTimeout(() => resolve('timeout'), STOP_TIMEOUT_MS).unref());
      if ((await Promise.race([this.exited, timer])) === 'timeout') killGroup(pid, 'SIGKILL');
      await this.exited;
    }
    if (pid !== undefined) {
      // Children of the master that outlived it (they share its process group).
      const deadline = Date.now() + STOP_TIMEOUT_MS;
      while (processGroupAlive(pid) && Date.now() < deadline) {
        killGroup(pid, 'SIGKILL');
        await new Promise((r) => setTimeout(r, 20));
      }
    }
    await rm(this.dir, { recursive: true, force: true });
  }

  private async ensureMaildir(maildir: string): Promise<void> {
    for (const sub of ['', 'cur', 'new', 'tmp']) {
      const path = join(maildir, sub);
      await mkdir(path, { recursive: true, mode: 0o700 });
      if (this.chownFiles) await chown(path, this.mailUid, this.mailGid);
    }
  }

  private async prepare(introspectionUrl: string, pair: { key: string; cert: string }, users: string[], id: Identity, extraConfig: string): Promise<void> {
    const dir = this.dir;
    // The folder is mkdtemp's 0700: Dovecot's unprivileged processes (auth as `dovecot`, imap as the mail user)
    // must be able to pass through it.
    await chmod(dir, 0o711);
    for (const sub of ['run', 'state', 'tls']) await mkdir(join(dir, sub), { mode: 0o755 });
    for (const sub of ['mail', 'home']) {
      await mkdir(join(dir, sub), { mode: 0o755 });
      if (this.chownFiles) await chown(join(dir, sub), this.mailUid, this.mailGid);
    }
    for (const user of users) {
      await this.ensureMaildir(this.maildir(user));
      await mkdir(join(dir, 'home', user), { mode: 0o700 });
      if (this.chownFiles) await chown(join(dir, 'home', user), this.mailUid, this.mailGid);
    }
    // Read by the config process, which runs as root (or as the current user).
    await writeFile(join(dir, 'tls', 'key.pem'), pair.key, { mode: 0o600 });
    await writeFile(join(dir, 'tls', 'cert.pem'), pair.cert, { mode: 0o644 });

    const debug = process.env.DOVECOT_DEBUG ? 'yes' : 'no';
    const common = [
      `introspection_url = ${introspectionUrl}`,
      'introspection_mode = post',
      // Without a tokeninfo_url Dovecot introspects every token anyway; said explicitly.
      'force_introspection = yes',
      'timeout_msecs = 5000',
      'max_parallel_connections = 10',
      `debug = ${debug}`,
    ];
    // Dovecot 2.3.19's oauth2 passdb checks an introspection answer in this order:
    //  a. active_attribute: present with another value than active_value -> PASSWORD_MISMATCH (a plain failure);
    //     ABSENT -> accepted (so it can require a value only of an attribute every answer has);
    //  b. username_attribute: absent -> INTERNAL_FAILURE ("NO [UNAVAILABLE]"); otherwise username_format is
    //     expanded once for the login name and once for the attribute's value, and they must be equal, else
    //     USER_UNKNOWN. A constant username_format (no %-variables) is equal on both sides: no name is checked.
    // One passdb cannot express "the login name, or anything if sub is app", so three run in a chain:
    const passdbFile = (name: string, settings: string[]) =>
      writeFile(join(dir, name), [...common, ...settings, ''].join('\n'), { mode: 0o644 });
    // 1. Delegated token: active, and its username is the login name (both lowercased, %Lu) -> logged in.
    //    Otherwise (another mailbox's token, an app-only token, an inactive token) a plain failure: go on.
    await passdbFile('oauth2-delegated.conf.ext', [
      'active_attribute = active',
      'active_value = true',
      'username_attribute = username',
      'username_format = %Lu',
    ]);
    // 2. Not active (expired, revoked, unknown): fail here, with AUTHENTICATIONFAILED. Active: go on.
    //    (username_attribute = active because every answer has it; the constant format checks no name.)
    await passdbFile('oauth2-active.conf.ext', [
      'active_attribute = active',
      'active_value = true',
      'username_attribute = active',
      'username_format = any-mailbox',
    ]);
    // 3. App-only token (sub = "app", active by now): any login name. A delegated token for another mailbox
    //    has another sub and fails.
    await passdbFile('oauth2-app-only.conf.ext', [
      'active_attribute = sub',
      'active_value = app',
      'username_attribute = active',
      'username_format = any-mailbox',
    ]);

    const dh = '/usr/share/dovecot/dh.pem';
    const config = `# Written by test/helpers/dovecot-server.ts: a throwaway Dovecot ${id.root ? '(started as root)' : '(rootless)'}.
instance_name = passgate-test-${randomBytes(4).toString('hex')}
base_dir = ${dir}/run
state_dir = ${dir}/state
log_path = ${dir}/dovecot.log
protocols = imap${this.pop3 ? ' pop3' : ''}
listen = 127.0.0.1
shutdown_clients = yes

ssl = yes
ssl_cert = <${dir}/tls/cert.pem
ssl_key = <${dir}/tls/key.pem
ssl_min_protocol = TLSv1.2
${existsSync(dh) ? `ssl_dh = <${dh}` : ''}
disable_plaintext_auth = yes

auth_mechanisms = xoauth2 oauthbearer
# Answer a failed login at once (tests would otherwise wait 2 s per bad token).
auth_failure_delay = 0
auth_verbose = yes
auth_debug = ${debug}
mail_debug = ${debug}

passdb {
  driver = oauth2
  mechanisms = xoauth2 oauthbearer
  args = ${dir}/oauth2-delegated.conf.ext
  result_success = return-ok
  result_failure = continue
  result_internalfail = continue
}
passdb {
  driver = oauth2
  mechanisms = xoauth2 oauthbearer
  args = ${dir}/oauth2-active.conf.ext
  result_success = continue
  result_failure = return-fail
  result_internalfail = continue
}
passdb {
  driver = oauth2
  mechanisms = xoauth2 oauthbearer
  args = ${dir}/oauth2-app-only.conf.ext
}
userdb {
  driver = static
  args = uid=${this.mailUid} gid=${this.mailGid} home=${dir}/home/%u
}

mail_location = maildir:${dir}/mail/%u
# A throwaway folder: no crash durability needed (other processes see the page cache either way).
mail_fsync = never
# Dovecot watches new/ and cur/ with inotify; this is the fallback poll for a client in IDLE.
mailbox_idle_check_interval = 1 secs
imap_idle_notify_interval = 2 mins
# Gateway tests open many connections per mailbox from 127.0.0.1.
mail_max_userip_connections = 100

service imap-login {
  inet_listener imap {
    address = 127.0.0.1
    port = ${this.imapPort}
  }
  inet_listener imaps {
    address = 127.0.0.1
    port = ${this.imapsPort}
    ssl = yes
  }
}
${this.pop3 ? `service pop3-login {
${id.root ? '' : '  chroot =\n'}  inet_listener pop3 {
    address = 127.0.0.1
    port = ${this.pop3Port}
  }
  inet_listener pop3s {
    address = 127.0.0.1
    port = ${this.pop3sPort}
    ssl = yes
  }
}` : ''}
# No growing per-IP penalty for failed logins (anvil's auth penalty; Authentication.Penalty in the docs).
service anvil {
  unix_listener anvil-auth-penalty {
    mode = 0
  }
}
${id.extraConfig}
${extraConfig}`;
    await writeFile(join(dir, 'dovecot.conf'), config, { mode: 0o644 });
  }

  private async launch(binary: string): Promise<void> {
    // -F: stay in the foreground, so the child is the master; detached: its own process group, for stop().
    const child = spawn(binary, ['-F', '-c', join(this.dir, 'dovecot.conf')], { detached: true, stdio: ['ignore', 'pipe', 'pipe'] });
    this.child = child;
    let spawnError = '';
    this.exited = new Promise<void>((resolve) => {
      child.once('exit', () => resolve());
      child.once('error', (error) => {
        spawnError = error.message;
        resolve();
      });
    });
    // Errors before the log is open (a bad configuration) go to stdout/stderr.
    child.stdout!.on('data', (chunk: Buffer) => (this.stderr += chunk.toString('utf8')));
    child.stderr!.on('data', (chunk: Buffer) => (this.stderr += chunk.toString('utf8')));
    live.add(this);
    installExitHook();

    const deadline = Date.now() + START_TIMEOUT_MS;
    for (;;) {
      if (child.exitCode !== null || child.signalCode !== null || spawnError) {
        await this.exited;
        throw new Error(`dovecot exited (${child.exitCode ?? child.signalCode ?? spawnError}) while starting:\n${this.stderr}${await this.log()}`);
      }
      // Dovecot greets once its auth process is ready: wait for that up to the deadline (at least a second).
      const wait = () => Math.max(1000, deadline - Date.now());
      const plain = await greets(this.imapPort, false, wait());
      const imaps = plain.ok ? await greets(this.imapsPort, true, wait()) : plain;
      const pop3 = imaps.ok && this.pop3 ? await greets(this.pop3Port, false, wait(), '+OK') : imaps;
      const secure = pop3.ok && this.pop3 ? await greets(this.pop3sPort, true, wait(), '+OK') : pop3;
      if (plain.ok && secure.ok) return;
      if (secure.error || Date.now() > deadline) {
        await new Promise((r) => setTimeout(r, 200)); // let Dovecot's log process write what it knows
        const why = secure.error ?? `it did not greet on 127.0.0.1:${this.imapPort}/${this.imapsPort} within ${START_TIMEOUT_MS} ms`;
        throw new Error(`dovecot failed to start (${why}):\n${this.stderr}${await this.log()}`);
      }
      await new Promise((r) => setTimeout(r, 50));
    }
  }

  /** For the exit hook: no awaiting possible there. */
  killNow(): void {
    const pid = this.child?.pid;
    if (pid !== undefined) killGroup(pid, 'SIGKILL');
    rmSync(this.dir, { recursive: true, force: true });
  }
}

function installExitHook(): void {
  if (exitHookInstalled) return;
  exitHookInstalled = true;
  const killAll = () => {
    for (const server of live) server.killNow();
  };
  process.once('exit', killAll);
  // Dovecot has its own process group, so a Ctrl-C or a runner's SIGTERM would not reach it: pass it on, then let
  // the signal do what it would have done.
  for (const signal of ['SIGINT', 'SIGTERM', 'SIGHUP'] as const) {
    const onSignal = () => {
      killAll();
      process.removeListener(signal, onSignal);
      if (process.listenerCount(signal) === 0) process.kill(process.pid, signal);
    };
    process.on(signal, onSignal);
  }
}
