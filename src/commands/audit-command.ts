import { Command } from 'commander';
import { normalizeUsername } from '../core/app-password-record.js';
import { parseDuration } from '../core/duration.js';
import { GatewayError } from '../core/gateway-error.js';
import type { CliContext } from './cli-context.js';
import { formatTable, formatTime } from './cli-format.js';

export function auditCommand(ctx: CliContext): Command {
  return new Command('audit')
    .description('show the sign-in (audit) log, newest first')
    .option('--user <address>', 'only this user')
    .option('--since <duration>', 'only the last 15m, 1h, 7d, ...')
    .option('--limit <n>', 'at most this many entries', '100')
    .option('--json', 'print a JSON array')
    .action(async (opts: { user?: string; since?: string; limit: string; json?: boolean }) => {
      const limit = Number(opts.limit);
      if (!Number.isInteger(limit) || limit < 1) throw new GatewayError('PG_INVALID_INPUT', `invalid --limit "${opts.limit}"`);
      const sinceMs = opts.since === undefined ? undefined : parseDuration(opts.since);
      await ctx.withApp(async (app) => {
        const events = await app.audit.query({
          limit,
          ...(opts.user !== undefined ? { username: normalizeUsername(opts.user) } : {}),
          ...(sinceMs !== undefined ? { since: app.clock() - sinceMs } : {}),
        });
        if (opts.json) return ctx.json(events);
        if (events.length === 0) return ctx.io.stdout('no entries\n');
        ctx.io.stdout(
          formatTable(
            ['TIME', 'ACTION', 'PROTO', 'USER', 'IP', 'APP PASSWORD', 'RESULT', 'DETAIL'],
            events.map((e) => [
              formatTime(e.at),
              e.action,
              e.protocol ?? '-',
              e.username,
              e.clientIp ?? '-',
              e.appPasswordId ? `${e.appPasswordName ?? ''} (${e.appPasswordId})` : '-',
              e.reason,
              e.detail ?? '',
            ]),
          ),
        );
      });
    });
}
