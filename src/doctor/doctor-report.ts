/** How one check ended. `skip`: not applicable here, or not reachable because an earlier check failed. */
export type CheckStatus = 'pass' | 'warn' | 'fail' | 'skip';

export interface CheckResult {
  /** Short and stable, e.g. `config`, `redis eviction`, `smtp login`. */
  name: string;
  status: CheckStatus;
  /** What was found, in one line. Never a password, token or secret. */
  detail: string;
  /** For a warning or failure: what it means and what to do, in plain words (may span lines). */
  hint?: string;
  /** The id of the known failure it matched (microsoft-failures.ts), for scripts reading --json. */
  failure?: string;
}

export interface DoctorReport {
  checks: CheckResult[];
  /** True when no check failed (and, with strict, none warned). */
  ok: boolean;
  /**
   * 0: every check passed (warnings allowed unless strict); 1: a check failed (or warned, with strict);
   * 2: the configuration itself is invalid — the same meaning as for every other passgate command.
   */
  exitCode: 0 | 1 | 2;
  counts: Record<CheckStatus, number>;
}

export function summarize(checks: CheckResult[], strict: boolean): DoctorReport {
  const counts: Record<CheckStatus, number> = { pass: 0, warn: 0, fail: 0, skip: 0 };
  for (const check of checks) counts[check.status]++;
  const configInvalid = checks.some((c) => c.name === 'config' && c.status === 'fail');
  const failed = counts.fail > 0 || (strict && counts.warn > 0);
  return { checks, ok: !failed, exitCode: configInvalid ? 2 : failed ? 1 : 0, counts, };
}

export const pass = (name: string, detail: string): CheckResult => ({ name, status: 'pass', detail });
export const skip = (name: string, detail: string): CheckResult => ({ name, status: 'skip', detail });
export const warn = (name: string, detail: string, hint?: string): CheckResult => ({ name, status: 'warn', detail, ...(hint ? { hint } : {}) });
export const fail = (name: string, detail: string, hint?: string): CheckResult => ({ name, status: 'fail', detail, ...(hint ? { hint } : {}) });
