import type { SmtpConfig } from '../config/config-schema.js';
import type { MessageLog, MessageRecord } from '../core/message-log.js';
import { pass, skip, warn, type CheckResult } from './doctor-report.js';

const NAME = 'smtp continuous errors';
const DAY_MS = 86_400_000;
const CONTINUOUS = /^\d{3} (5\.2\.25[1-5])\b/;

const HINT =
  'Exchange Online throttles a mailbox whose SMTP submissions keep failing with the same permanent error (5.2.251-5.2.255; 5.2.252 is SendAs denied), ' +
  'and Microsoft support cannot lift it. passgate refuses such a submission itself once the upstream refused it smtp.continuous_errors.threshold times, ' +
  'for smtp.continuous_errors.cool_down_seconds. Fix the device (its sender or recipient) or the mailbox (SendAs permission, a full mailbox); ' +
  'passgate audit --messages --result refused lists every refusal (docs/troubleshooting.md, "Continuous-error throttling").';

/**
 * Issue 17: the message trace of the last 24 hours, read for the upstream's continuous-error refusals (5.2.251 …
 * 5.2.255) and passgate's own holds of them: per (mailbox, sender, recipient), how often, so the admin can fix the
 * device before Exchange Online throttles the mailbox. Read-only; a trace that cannot be read is skipped.
 */
export async function checkContinuousErrors(smtp: Pick<SmtpConfig, 'enabled' | 'continuous_errors'>, messages: MessageLog, now: number): Promise<CheckResult> {
  if (!smtp.enabled) return skip(NAME, 'smtp is disabled');
  const guard = smtp.continuous_errors.cool_down_seconds > 0
    ? `passgate holds a submission back after ${smtp.continuous_errors.threshold} such refusals, for ${smtp.continuous_errors.cool_down_seconds} s`
    : 'holding back is off (smtp.continuous_errors.cool_down_seconds: 0)';
  let records: MessageRecord[];
  try {
    records = await messages.query({ result: 'refused', since: now - DAY_MS, limit: 1000 });
  } catch (error) {
    return skip(NAME, `the message trace cannot be read: ${(error as Error).message}`);
  }
  const groups = new Map<string, { code: string; upstream: number; held: number }>();
  for (const record of records) {
    const code = record.reply === null ? undefined : CONTINUOUS.exec(record.reply)?.[1];
    if (code === undefined) continue;
    for (const recipient of record.recipients) {
      const key = `${record.mailbox}: ${record.sender || '<>'} → ${recipient}`;
      const group = groups.get(key) ?? { code, upstream: 0, held: 0 };
      if (/Refused by passgate/.test(record.reply!)) group.held++;
      else group.upstream++;
      groups.set(key, group);
    }
  }
  if (groups.size === 0) return pass(NAME, `no refusals with 5.2.251-5.2.255 in the last 24 hours; ${guard}`);
  const worst = [...groups.entries()].sort((a, b) => b[1].upstream + b[1].held - (a[1].upstream + a[1].held));
  const listed = worst
    .slice(0, 5)
    .map(([key, g]) => `${key} ${g.code} refused upstream ${g.upstream}×${g.held > 0 ? `, held back by passgate ${g.held}×` : ''}`)
    .join('; ');
  const more = worst.length > 5 ? `; and ${worst.length - 5} more` : '';
  return warn(NAME, `${groups.size} submission(s) refused with 5.2.251-5.2.255 in the last 24 hours: ${listed}${more}; ${guard}`, HINT);
}
