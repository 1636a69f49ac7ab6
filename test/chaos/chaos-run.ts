import { readFileSync } from 'node:fs';
import { startChaosEnv, DEPENDENCIES, type ChaosEnv, type DependencyName } from './chaos-env.js';
import { buildReport, type ChaosAction, type ChaosReport } from './chaos-report.js';
import { readOnce, type ReadOutcome } from './imap-reader.js';
import { markUpstreamStalls } from './mark-upstream-stalls.js';
import { chaosIdOf, sendOne, type SendOutcome } from './smtp-sender.js';

export interface ChaosOptions {
  /** How long the chaos goes on (the load stops after it, then the invariants are checked). */
  durationMs: number;
  seed: number;
  /** Concurrent SMTP senders and IMAP readers. */
  senders: number;
  readers: number;
  /** Mailboxes (one app password each); clients are spread over them. */
  users: number;
  /** A dependency stays down a random time in this range. */
  minDownMs: number;
  maxDownMs: number;
  /** Quiet time between one recovery and the next fault, a random time in this range. */
  minGapMs: number;
  maxGapMs: number;
  /** After a dependency is back, a probe must succeed within this (else an invariant breaks). */
  maxRecoveryMs: number;
  /** No reply within this is a hang. */
  replyTimeoutMs: number;
  /** Access tokens live this long at the OAuth server; passgate stops using one `refreshMarginSeconds` before. */
  tokenLifetimeSeconds: number;
  refreshMarginSeconds: number;
  /** Progress lines (actions as they happen). */
  log: (line: string) => void;
  /** Keep the work folder (passgate.log) after the run. */
  keepFolder: boolean;
}

export const DEFAULT_CHAOS_OPTIONS: ChaosOptions = {
  durationMs: 180_000,
  seed: 1,
  senders: 4,
  readers: 3,
  users: 3,
  minDownMs: 1000,
  maxDownMs: 5000,
  minGapMs: 500,
  maxGapMs: 3000,
  maxRecoveryMs: 10_000,
  replyTimeoutMs: 30_000,
  tokenLifetimeSeconds: 30,
  refreshMarginSeconds: 10,
  log: (line) => console.log(line),
  keepFolder: false,
};

/** mulberry32: a small seeded PRNG, so a run's schedule can be replayed from its seed. */
export function seededRandom(seed: number): () => number {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

/**
 * A bounded chaos run: passgate serves senders and readers while, one at a time and at seeded random moments, the
 * upstream SMTP server, Dovecot, the OAuth server or Redis is killed for 1–5 s and started again on the same port;
 * after each return a probe measures how long until a login and a message work again. At the end every 250 is
 * matched against the upstream's deliveries. Returns the report (violations empty when every invariant held).
 */
export async function runChaos(overrides: Partial<ChaosOptions> = {}): Promise<ChaosReport> {
  const o = { ...DEFAULT_CHAOS_OPTIONS, ...overrides };
  const env = await startChaosEnv({ users: o.users, tokenLifetimeSeconds: o.tokenLifetimeSeconds, refreshMarginSeconds: o.refreshMarginSeconds });
  let report: ChaosReport;
  try {
    report = await drive(env, o);
  } catch (error) {
    // Every process started is stopped even when the run itself fails; the folder stays for a look.
    await env.close(true);
    throw error;
  }
  await env.close(o.keepFolder || report.violations.length > 0);
  return report;
}

async function drive(env: ChaosEnv, o: ChaosOptions): Promise<ChaosReport> {
  const random = seededRandom(o.seed);
  const between = (min: number, max: number) => Math.round(min + random() * (max - min));
  const t0 = Date.now();
  const stamp = () => `[${((Date.now() - t0) / 1000).toFixed(1).padStart(6)} s]`;
  o.log(`${stamp()} passgate pid ${env.passgate.pid} serving smtp :${env.passgate.ports.submissions}, imap :${env.passgate.ports.imaps}; seed ${o.seed}`);

  const sends: (SendOutcome & { probe: boolean })[] = [];
  const reads: (ReadOutcome & { probe: boolean })[] = [];
  const actions: ChaosAction[] = [];
  let stopping = false;
  let messageCounter = 0;
  const nextId = (who: string) => `${o.seed}-${who}-${++messageCounter}`;
  const account = (i: number) => env.users[i % env.users.length]!;
  /** Outcomes are kept with their start as milliseconds into the run. */
  const record = <T extends { at: number }>(list: (T & { probe: boolean })[], outcome: T, probe: boolean) =>
    void list.push({ ...outcome, at: outcome.at - t0, probe });

  // Load: every loop ends by itself once `stopping` is set; each step is bounded by replyTimeoutMs.
  const loops: Promise<void>[] = [];
  for (let i = 0; i < o.senders; i++) {
    const jitter = seededRandom(o.seed * 1000 + i);
    loops.push(
      (async () => {
        while (!stopping) {
          record(sends, await sendOne(env.passgate.ports.submissions, account(i), nextId(`s${i}`), o.replyTimeoutMs), false);
          await sleep(50 + jitter() * 300);
        }
      })(),
    );
  }
  for (let i = 0; i < o.readers; i++) {
    const jitter = seededRandom(o.seed * 2000 + i);
    loops.push(
      (async () => {
        while (!stopping) {
          record(reads, await readOnce(env.passgate.ports.imaps, account(i), 200 + jitter() * 1300, o.replyTimeoutMs), false);
          await sleep(100 + jitter() * 500);
        }
      })(),
    );
  }
  const mirror = mirrorDeliveries(env, () => stopping);

  // Chaos: rounds that visit every dependency once, in a seeded order; Redis alternates between a kill and a freeze.
  const probeAccount = env.users[0]!;
  let redisKills = 0;
  while (Date.now() - t0 < o.durationMs) {
    const order = [...DEPENDENCIES];
    for (let i = order.length - 1; i > 0; i--) {
      const j = Math.floor(random() * (i + 1));
      [order[i], order[j]] = [order[j]!, order[i]!];
    }
    for (const name of order) {
      if (Date.now() - t0 >= o.durationMs) break;
      await sleep(between(o.minGapMs, o.maxGapMs));
      const downMs = between(o.minDownMs, o.maxDownMs);
      const dependency = env.dependencies[name];
      const mode = name === 'redis' && redisKills++ % 2 === 1 ? 'freeze' : 'kill';
      const action: ChaosAction = { at: Date.now() - t0, dependency: name, mode, downMs, recoveryMs: null };
      actions.push(action);
      o.log(`${stamp()} ${mode} ${name} for ${downMs} ms`);
      if (mode === 'freeze') env.redis.pause();
      else await dependency.down();
      await sleep(downMs);
      if (mode === 'freeze') env.redis.resume();
      else await dependency.up();
      const back = Date.now();
      action.recoveryMs = await probeUntilWorking(name, probeAccount, back + Math.max(30_000, o.maxRecoveryMs * 3));
      o.log(
        `${stamp()} ${name} back; ${action.recoveryMs === null ? 'service did NOT come back' : `service back after ${action.recoveryMs} ms`}`,
      );
    }
  }

  stopping = true;
  o.log(`${stamp()} chaos over; waiting for the clients to finish`);
  await Promise.all(loops);
  await mirror;
  // A final probe, all dependencies up: both services work.
  const finalSmtp = await sendOne(env.passgate.ports.submissions, probeAccount, nextId('final'), o.replyTimeoutMs);
  const finalImap = await readOnce(env.passgate.ports.imaps, probeAccount, 0, o.replyTimeoutMs);
  record(sends, finalSmtp, true);
  record(reads, finalImap, true);
  const alive = env.passgate.exited === null;
  const healthy = await env.passgate.healthy();
  const exitCode = await env.passgate.stop();

  markUpstreamStalls(reads, readFileSync(env.passgate.logPath, 'utf8'), o.replyTimeoutMs);
  return buildReport({
    options: o,
    elapsedMs: Date.now() - t0,
    actions,
    sends,
    reads,
    deliveredIds: env.upstream.deliveries().map((d) => (d.raw ? chaosIdOf(d.raw) : null)),
    passgate: {
      alive,
      healthy,
      exit: env.passgate.exited,
      stopExitCode: exitCode,
      errorLogLines: env.passgate.errorLines,
      stderrTail: env.passgate.stderrTail,
      logPath: env.passgate.logPath,
    },
    finalOk: finalSmtp.result === 'accepted' && finalImap.result === 'ok',
    oauthCounts: env.oauth.grants(),
  });

  /** Probes the services that depend on `name` until both work; the time from the dependency's return, or null. */
  async function probeUntilWorking(name: DependencyName, probe: { user: string; password: string }, deadline: number): Promise<number | null> {
    const { affects } = env.dependencies[name];
    const back = Date.now();
    let smtpOk = !affects.smtp;
    let imapOk = !affects.imap;
    while (Date.now() < deadline) {
      const [smtp, imap] = await Promise.all([
        smtpOk ? null : sendOne(env.passgate.ports.submissions, probe, nextId('probe'), o.replyTimeoutMs),
        imapOk ? null : readOnce(env.passgate.ports.imaps, probe, 0, o.replyTimeoutMs),
      ]);
      if (smtp) record(sends, smtp, true);
      if (imap) record(reads, imap, true);
      smtpOk ||= smtp?.result === 'accepted';
      imapOk ||= imap?.result === 'ok';
      if (smtpOk && imapOk) return Date.now() - back;
      await sleep(100);
    }
    return null;
  }
}

/** Copies each message the upstream accepted into Dovecot's maildir for its mailbox, so the readers find mail. */
async function mirrorDeliveries(env: ChaosEnv, stopped: () => boolean): Promise<void> {
  let copied = 0;
  for (;;) {
    const done = stopped();
    const deliveries = env.upstream.deliveries();
    while (copied < deliveries.length) {
      const delivery = deliveries[copied++]!;
      if (delivery.raw) await env.dovecot.deliver(delivery.mailbox, delivery.raw).catch(() => {});
    }
    if (done) return;
    await sleep(200);
  }
}
