import { Command } from 'commander';
import { normalizeUsername } from '../core/app-password-record.js';
import { AUDIT_REASONS, type AuditEvent, type AuditReason } from '../core/audit-log.js';
import { GatewayError } from '../core/gateway-error.js';
import { MESSAGE_RESULTS, type MessageRecord, type MessageResult } from '../core/message-log.js';
import { isProtocol, PROTOCOLS, type Protocol } from '../core/protocol.js';
import type { CliContext } from './cli-context.js';
import { formatTable, formatTime } from './cli-format.js';
import { parseTimeBound } from './time-bound.js';

interface AuditOptions {
  messages?: boolean;
  user?: string;
  id?: string;
  result?: string;
  protocol?: string;
  since?: string;
  until?: string;
  limit: string;
  json?: boolean;
}

const invalid = (message: string) => new GatewayError('PG_INVALID_INPUT', message);

function oneOf<T extends string>(value: string, allowed: readonly T[], option: string): T {
  if (!(allowed as readonly string[]).includes(value)) throw invalid(`invalid ${option} "${value}": one of ${allowed.join(', ')}`);
  return value as T;
}

const appPassword = (id: string | null, name: string | null) => (id ? `${name ?? ''} (${id})` : '-');

function signInTable(events: AuditEvent[]): string {
  return formatTable(
    ['TIME', 'ACTION', 'PROTO', 'USER', 'IP', 'APP PASSWORD', 'RESULT', 'DETAIL'],
    events.map((e) => [formatTime(e.at, true), e.action, e.protocol ?? '-', e.username, e.clientIp ?? '-', appPassword(e.appPasswordId, e.appPasswordName), e.reason, e.detail ?? '']),
  );
}

function messageTable(records: MessageRecord[]): string {
  return formatTable(
    ['TIME', 'SESSION', 'USER', 'APP PASSWORD', 'FROM', 'TO', 'SIZE', 'MESSAGE-ID', 'RESULT', 'REPLY'],
    records.map((m) => [
      formatTime(m.at, true),
      m.sessionId,
      m.username,
      appPassword(m.appPasswordId, m.appPasswordName),
      m.sender || '<>',
      `${m.recipients[0] ?? '-'}${m.recipientCount > 1 ? ` +${m.recipientCount - 1}` : ''}`,
      m.sizeBytes === null ? '-' : String(m.sizeBytes),
      m.messageId ?? '-',
      m.result,
      `${m.reply ?? ''}${m.detail ? ` (${m.detail})` : ''}${m.queueId && !(m.reply ?? '').includes(m.queueId) ? ` queue id ${m.queueId}` : ''}`,
    ]),
  );
}

/**
 * `passgate audit`: the sign-in log (logins and operator actions), or with --messages the message trace; the same
 * filters for both. Times are UTC, to the second.
 */
export function auditCommand(ctx: CliContext): Command {
  return new Command('audit')
    .description('show the sign-in (audit) log, or with --messages the message trace; newest first')
    .option('--messages', 'show the message trace (every message sent through passgate, and every refusal of one) instead of sign-ins')
    .option('--user <address>', 'only this user')
    .option('--id <app-password-id>', 'only this app password')
    .option('--result <result>', `only this result: sign-ins ${AUDIT_REASONS.join('|')}; messages ${MESSAGE_RESULTS.join('|')}`)
    .option('--protocol <protocol>', `only this protocol (${PROTOCOLS.join('|')})`)
    .option('--since <when>', 'only from then on: 15m, 1h, 7d back from now, or a UTC time (2026-12-04 09:00)')
    .option('--until <when>', 'only before then (same forms as --since)')
    .option('--limit <n>', 'at most this many entries', '100')
    .option('--json', 'print a JSON array')
    .action(async (opts: AuditOptions) => {
      const limit = Number(opts.limit);
      if (!Number.isInteger(limit) || limit < 1) throw invalid(`invalid --limit "${opts.limit}"`);
      if (opts.protocol !== undefined && !isProtocol(opts.protocol)) throw invalid(`invalid --protocol "${opts.protocol}": one of ${PROTOCOLS.join(', ')}`);
      const reason = opts.result === undefined || opts.messages ? undefined : oneOf<AuditReason>(opts.result, AUDIT_REASONS, '--result');
      const result = opts.result === undefined || !opts.messages ? undefined : oneOf<MessageResult>(opts.result, MESSAGE_RESULTS, '--result');
      const now = Date.now();
      const since = opts.since === undefined ? undefined : parseTimeBound(opts.since, now);
      const until = opts.until === undefined ? undefined : parseTimeBound(opts.until, now);
      const filters = {
        limit,
        ...(opts.user !== undefined ? { username: normalizeUsername(opts.user) } : {}),
        ...(opts.id !== undefined ? { appPasswordId: opts.id } : {}),
        ...(opts.protocol !== undefined ? { protocol: opts.protocol as Protocol } : {}),
        ...(since !== undefined ? { since } : {}),
        ...(until !== undefined ? { until } : {}),
      };
      await ctx.withApp(async (app) => {
        if (opts.messages) {
          const records = await app.messageLog.query({ ...filters, ...(result !== undefined ? { result } : {}) });
          if (opts.json) return ctx.json(records);
          return ctx.io.stdout(records.length === 0 ? 'no messages\n' : messageTable(records));
        }
        const events = await app.audit.query({ ...filters, ...(reason !== undefined ? { reason } : {}) });
        if (opts.json) return ctx.json(events);
        ctx.io.stdout(events.length === 0 ? 'no entries\n' : signInTable(events));
      });
    });
}
