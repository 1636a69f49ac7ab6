import type { DependencyName } from './chaos-env.js';
import type { ReadOutcome, ReadResult } from './imap-reader.js';
import type { SendOutcome, SendResult } from './smtp-sender.js';

export interface ChaosAction {
  /** Milliseconds since the start of the run. */
  at: number;
  dependency: DependencyName;
  /** kill: the process is killed (connections reset) and started again; freeze: SIGSTOP, then SIGCONT (Redis). */
  mode: 'kill' | 'freeze';
  downMs: number;
  /** From the dependency's return to a working login and message through passgate; null: not within the bound. */
  recoveryMs: number | null;
}

export interface ChaosReport {
  seed: number;
  elapsedMs: number;
  clients: { senders: number; readers: number; users: number };
  actions: ChaosAction[];
  smtp: Record<SendResult, number> & { attempts: number; probes: number };
  delivered: number;
  /** Ids the upstream received more than once. */
  duplicates: string[];
  /** Got a 250 but the upstream never received it. */
  lost: string[];
  /** The upstream received it but the client never got a 250. */
  unexpected: string[];
  /** Deliveries without a chaos id (none expected). */
  foreign: number;
  imap: Record<ReadResult, number> & { sessions: number; probes: number };
  recovery: Partial<Record<DependencyName, { actions: number; maxMs: number | null; meanMs: number | null }>>;
  passgate: {
    alive: boolean;
    healthy: boolean;
    exit: { code: number | null; signal: NodeJS.Signals | null } | null;
    stopExitCode: number | null;
    errorLogLines: number;
    stderrTail: string;
    logPath: string;
  };
  oauthCounts: Record<string, number>;
  /** Temporary replies seen, by stage and text (what clients were told while dependencies were away). */
  temporaryReplies: Record<string, number>;
  /** Every broken invariant, in words; empty when the run passed. */
  violations: string[];
}

export interface ReportInput {
  options: { seed: number; senders: number; readers: number; users: number; maxRecoveryMs: number };
  elapsedMs: number;
  actions: ChaosAction[];
  sends: (SendOutcome & { probe: boolean })[];
  reads: (ReadOutcome & { probe: boolean })[];
  deliveredIds: (string | null)[];
  passgate: ChaosReport['passgate'];
  finalOk: boolean;
  oauthCounts: Record<string, number>;
}

const tally = <K extends string>(keys: readonly K[], values: K[]): Record<K, number> =>
  Object.fromEntries(keys.map((k) => [k, values.filter((v) => v === k).length])) as Record<K, number>;

export function buildReport(input: ReportInput): ChaosReport {
  const { sends, reads, actions } = input;
  const violations: string[] = [];
  const smtp = {
    attempts: sends.length,
    probes: sends.filter((s) => s.probe).length,
    ...tally(['accepted', 'temporary', 'permanent', 'closed', 'timeout', 'connect-failed'] as const, sends.map((s) => s.result)),
  };
  const imap = {
    sessions: reads.length,
    probes: reads.filter((r) => r.probe).length,
    ...tally(['ok', 'temporary', 'failed', 'timeout', 'upstream-stall', 'connect-failed'] as const, reads.map((r) => r.result)),
  };

  // Delivery: every 250 exactly once upstream, nothing else.
  const counts = new Map<string, number>();
  let foreign = 0;
  for (const id of input.deliveredIds) {
    if (id === null) foreign++;
    else counts.set(id, (counts.get(id) ?? 0) + 1);
  }
  const accepted = new Set(sends.filter((s) => s.result === 'accepted').map((s) => s.id));
  const duplicates = [...counts].filter(([, n]) => n > 1).map(([id]) => id);
  const lost = [...accepted].filter((id) => !counts.has(id));
  const unexpected = [...counts.keys()].filter((id) => !accepted.has(id));

  const examples = <T>(items: T[], show: (item: T) => string) => items.slice(0, 3).map(show).join('; ');
  const sendLine = (s: SendOutcome) => `${s.id} at ${(s.at / 1000).toFixed(1)} s, ${s.stage}: ${s.reply || '(no reply)'}`;
  const readLine = (r: ReadOutcome) => `session at ${(r.at / 1000).toFixed(1)} s, ${r.stage}: ${r.detail || '(no answer)'}`;
  const bad = <T>(what: string, items: T[], show: (item: T) => string) => {
    if (items.length > 0) violations.push(`${items.length} ${what} (e.g. ${examples(items, show)})`);
  };
  bad('SMTP attempts got a permanent (5xx) reply', sends.filter((s) => s.result === 'permanent'), sendLine);
  bad('SMTP replies did not come within the bound (hang)', sends.filter((s) => s.result === 'timeout'), sendLine);
  bad('SMTP connections were not accepted by passgate', sends.filter((s) => s.result === 'connect-failed'), sendLine);
  bad('IMAP sessions got a wrong answer for the right password or a healthy session', reads.filter((r) => r.result === 'failed'), readLine);
  bad('IMAP answers did not come within the bound (hang)', reads.filter((r) => r.result === 'timeout'), readLine);
  bad('IMAP connections were not accepted by passgate', reads.filter((r) => r.result === 'connect-failed'), readLine);
  bad('messages delivered more than once', duplicates, (id) => id);
  bad('messages got a 250 but were never delivered', lost, (id) => id);
  bad('messages were delivered without a 250 to the client', unexpected, (id) => `${id}: ${sends.find((s) => s.id === id)?.reply ?? 'never sent'}`);
  if (foreign > 0) violations.push(`${foreign} deliveries carried no chaos id`);

  const recovery: ChaosReport['recovery'] = {};
  for (const action of actions) {
    const entry = (recovery[action.dependency] ??= { actions: 0, maxMs: 0, meanMs: 0 });
    entry.actions++;
    if (action.recoveryMs === null) entry.maxMs = null;
    else if (entry.maxMs !== null) entry.maxMs = Math.max(entry.maxMs, action.recoveryMs);
  }
  for (const [name, entry] of Object.entries(recovery)) {
    const times = actions.filter((a) => a.dependency === name && a.recoveryMs !== null).map((a) => a.recoveryMs!);
    entry.meanMs = times.length ? Math.round(times.reduce((a, b) => a + b, 0) / times.length) : null;
  }
  for (const action of actions) {
    if (action.recoveryMs === null || action.recoveryMs > input.options.maxRecoveryMs) {
      violations.push(
        `service not back within ${input.options.maxRecoveryMs} ms after ${action.dependency} returned (${action.mode} at ${(action.at / 1000).toFixed(1)} s: ${action.recoveryMs ?? 'never'} ms)`,
      );
    }
  }
  const p = input.passgate;
  if (!p.alive) violations.push(`passgate exited during the run (${p.exit?.code ?? p.exit?.signal}): ${p.stderrTail.slice(-500)}`);
  else if (!p.healthy) violations.push('passgate /healthz did not answer 200 after the run');
  if (p.alive && p.stopExitCode !== 0) violations.push(`passgate did not stop cleanly on SIGTERM (exit ${p.stopExitCode})`);
  if (!input.finalOk) violations.push('the final probe (all dependencies up) did not get both a 250 and an IMAP session');

  const temporaryReplies: Record<string, number> = {};
  for (const s of sends.filter((x) => x.result === 'temporary' || x.result === 'closed')) {
    const key = `smtp ${s.stage}: ${s.result === 'closed' ? '(connection closed)' : s.reply.replace(/^(\d{3}[ -]\S*).*$/s, '$1')}`;
    temporaryReplies[key] = (temporaryReplies[key] ?? 0) + 1;
  }
  for (const r of reads.filter((x) => x.result === 'temporary')) {
    const key = `imap ${r.stage}: ${/NO \[UNAVAILABLE\]/.test(r.detail) ? 'NO [UNAVAILABLE]' : /BYE/.test(r.detail) ? '* BYE' : '(connection closed)'}`;
    temporaryReplies[key] = (temporaryReplies[key] ?? 0) + 1;
  }

  return {
    seed: input.options.seed,
    elapsedMs: input.elapsedMs,
    clients: { senders: input.options.senders, readers: input.options.readers, users: input.options.users },
    actions,
    smtp,
    delivered: input.deliveredIds.length,
    duplicates,
    lost,
    unexpected,
    foreign,
    imap,
    recovery,
    passgate: p,
    oauthCounts: input.oauthCounts,
    temporaryReplies,
    violations,
  };
}

/** The report as text: what was done, the counts, and the verdict. */
export function formatReport(r: ChaosReport): string {
  const lines: string[] = [];
  lines.push(`chaos run: seed ${r.seed}, ${(r.elapsedMs / 1000).toFixed(0)} s, ${r.clients.senders} senders, ${r.clients.readers} readers, ${r.clients.users} mailboxes`);
  lines.push(`actions (${r.actions.length}):`);
  for (const a of r.actions) {
    lines.push(`  ${(a.at / 1000).toFixed(1).padStart(6)} s  ${a.mode.padEnd(6)} ${a.dependency.padEnd(13)} down ${String(a.downMs).padStart(4)} ms  back to service in ${a.recoveryMs ?? 'NEVER'} ms`);
  }
  const s = r.smtp;
  lines.push(`smtp: ${s.attempts} attempts (${s.probes} probes): ${s.accepted} got 250, ${s.temporary} 4xx, ${s.permanent} 5xx, ${s.closed} closed, ${s.timeout} hung, ${s['connect-failed']} not accepted`);
  lines.push(`upstream: ${r.delivered} delivered; ${r.duplicates.length} duplicates, ${r.lost.length} lost (250 but not delivered), ${r.unexpected.length} unexpected (delivered without 250)`);
  const i = r.imap;
  lines.push(`imap: ${i.sessions} sessions (${i.probes} probes): ${i.ok} ok, ${i.temporary} temporary error, ${i.failed} wrong answer, ${i.timeout} hung, ${i['connect-failed']} not accepted`);
  if (i['upstream-stall'] > 0) lines.push(`  and ${i['upstream-stall']} sessions where Dovecot went silent after login; passgate's log shows it passed on every byte`);
  lines.push('temporary answers seen:');
  for (const [key, n] of Object.entries(r.temporaryReplies).sort((a, b) => b[1] - a[1])) lines.push(`  ${String(n).padStart(5)}  ${key}`);
  lines.push('recovery (dependency back -> login and message work through passgate):');
  for (const [name, e] of Object.entries(r.recovery)) lines.push(`  ${name.padEnd(13)} ${e.actions} times, max ${e.maxMs ?? 'NEVER'} ms, mean ${e.meanMs ?? '-'} ms`);
  lines.push(`oauth server: ${r.oauthCounts.client_credentials ?? 0} tokens issued (client credentials)`);
  const p = r.passgate;
  lines.push(`passgate: ${p.alive ? 'alive' : 'EXITED'} through the run, /healthz ${p.healthy ? '200' : 'FAILED'}, SIGTERM exit ${p.stopExitCode}, ${p.errorLogLines} error log lines`);
  lines.push(r.violations.length === 0 ? 'result: every invariant held' : `result: ${r.violations.length} invariant(s) broken:`);
  for (const v of r.violations) lines.push(`  - ${v}`);
  if (r.violations.length > 0) lines.push(`passgate log kept at ${p.logPath}`);
  return lines.join('\n');
}
