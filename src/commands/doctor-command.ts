import { Command, CommanderError } from 'commander';
import type { CheckStatus, DoctorReport } from '../doctor/doctor-report.js';
import { runDoctor } from '../doctor/doctor.js';
import type { CliContext } from './cli-context.js';
import { printable } from './cli-format.js';

const LABEL: Record<CheckStatus, string> = { pass: 'PASS', warn: 'WARN', fail: 'FAIL', skip: 'SKIP' };

/** One line per check, the plain-words hint indented under a warning or failure, then a summary line. */
export function formatDoctorReport(report: DoctorReport): string {
  const width = Math.max(...report.checks.map((c) => c.name.length));
  const lines: string[] = [];
  for (const check of report.checks) {
    // A provider's text keeps its line breaks (Microsoft's descriptions end with trace and correlation ids, each on
    // a line of its own): each line is printed, indented; only other control characters are escaped.
    const [first = '', ...more] = check.detail.split(/\r?\n/);
    lines.push(`${LABEL[check.status]}  ${printable(check.name).padEnd(width)}  ${printable(first)}`);
    for (const line of more) lines.push(`      ${printable(line)}`);
    if (check.hint && check.status !== 'pass') for (const line of check.hint.split(/\r?\n/)) lines.push(`      ${printable(line)}`);
  }
  const { pass, warn, fail, skip } = report.counts;
  const verdict = report.ok ? (warn > 0 ? 'ready, with warnings' : 'ready') : 'not ready';
  lines.push('', `${pass} passed, ${warn} warning${warn === 1 ? '' : 's'}, ${fail} failed, ${skip} skipped: ${verdict} (exit ${report.exitCode})`);
  return `${lines.join('\n')}\n`;
}

/**
 * `passgate doctor`: checks what `serve` needs, and with --mailbox logs in upstream for real. Exit 0 when no
 * check failed (warnings allowed, unless --strict), 1 when one did, 2 when the configuration itself is invalid.
 */
export function doctorCommand(ctx: CliContext, configPath: () => string | undefined): Command {
  return new Command('doctor')
    .description('check the configuration, certificates, store, Redis and tokens; with --mailbox, log in upstream over SMTP and IMAP')
    .option('--mailbox <address>', 'log in upstream as this mailbox (XOAUTH2 over SMTP and IMAP); nothing is sent or changed')
    .option('--strict', 'warnings fail the run too (exit 1)')
    .option('--json', 'print one JSON object: {ok, exitCode, counts, checks: [{name, status, detail, hint, failure}]}')
    .action(async (opts: { mailbox?: string; strict?: boolean; json?: boolean }) => {
      const report = await runDoctor({
        load: { path: configPath(), env: ctx.io.env, cwd: ctx.io.cwd },
        mailbox: opts.mailbox,
        strict: opts.strict,
      });
      if (opts.json) ctx.json(report);
      else ctx.io.stdout(formatDoctorReport(report));
      // The report is the output; the exit code carries the verdict (main.ts returns it as is).
      if (report.exitCode !== 0) throw new CommanderError(report.exitCode, 'passgate.exit', '');
    });
}
