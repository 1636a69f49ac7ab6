import { Command, Option } from 'commander';
import { statusOf, type AppPasswordStatus } from '../core/app-password-record.js';
import { parseExpiry } from '../core/expiry-input.js';
import { GatewayError } from '../core/gateway-error.js';
import { PROTOCOLS } from '../core/protocol.js';
import { addAppPasswordChangeCommands } from './app-password-change-commands.js';
import { describe, describePolicy, parseScopes, policyInput, type PolicyOptions } from './app-password-options.js';
import type { CliContext } from './cli-context.js';
import { formatAge, formatTable, formatTime, printable } from './cli-format.js';
import { setupSheetLines } from './setup-sheet-text.js';

const STATUSES: AppPasswordStatus[] = ['active', 'off', 'expired', 'revoked'];

export function appPasswordCommand(ctx: CliContext): Command {
  const cmd = new Command('app-password').description('create, list, change, turn off and revoke app passwords');

  cmd
    .command('create')
    .description('create an app password and print it once, with the device setup sheet')
    .requiredOption('--user <address>', 'the username the client will type (usually the mailbox address)')
    .requiredOption('--name <label>', 'what holds it, e.g. "Scanner, 3rd floor"')
    .option('--mailbox <address>', 'the upstream mailbox it acts as (default: the user)')
    .option('--scope <list>', `comma-separated protocols: ${PROTOCOLS.join(',')}; fixed at creation (passwords made before pop3 existed keep smtp,imap: create a new one for POP3)`, PROTOCOLS.join(','))
    .option('--expires <when>', 'a duration such as 90d, 6mo, 1y, 30min, or a date such as 2027-01-31')
    .option('--allow-from <cidr...>', 'only accept it from these networks (repeatable)')
    .option('--length <letters>', 'letters in the password, for devices with short password fields')
    .option('--allow-sender <address...>', 'SMTP: sender addresses allowed besides the mailbox (repeatable)')
    .option('--allow-recipient-domain <domain...>', 'SMTP: only these recipient domains (repeatable)')
    .option('--max-message-size <size>', 'SMTP: largest message, e.g. 10MB')
    .option('--max-messages-per-hour <n>', 'SMTP: messages per hour')
    .option('--max-messages-per-day <n>', 'SMTP: messages per day')
    .option('--check-from-header <on|off|default>', 'SMTP: refuse a From header that is not the mailbox or an allowed sender (default: smtp.check_from_header)')
    .option('--json', 'print one JSON object')
    .action(async (opts: PolicyOptions & { user: string; name: string; mailbox?: string; scope: string; expires?: string; allowFrom?: string[]; length?: string; json?: boolean }) => {
      const length = opts.length === undefined ? undefined : Number(opts.length);
      if (length !== undefined && !Number.isInteger(length)) throw new GatewayError('PG_INVALID_INPUT', `invalid --length "${opts.length}"`);
      await ctx.withApp(async (app) => {
        const expiry = opts.expires === undefined ? null : parseExpiry(opts.expires, app.clock(), '--expires');
        const created = await app.admin.appPasswords.create(ctx.operator(), {
          username: opts.user,
          name: opts.name,
          mailbox: opts.mailbox,
          scopes: parseScopes(opts.scope),
          allowedNetworks: opts.allowFrom,
          expiresAt: expiry?.at ?? null,
          length,
          policy: policyInput(opts),
        });
        if (opts.json) return ctx.json({ ...created.view, password: created.password, setup: created.setup });
        const v = created.view;
        const expires = v.expiresAt === null ? 'never' : `${formatTime(v.expiresAt)} (understood "${opts.expires}" as ${expiry!.understood})`;
        ctx.io.stdout(
          [
            `App password "${v.name}" created for ${v.username} (id ${v.id}).`,
            '',
            `    ${created.password}`,
            '',
            'This is the only time it is shown. Enter it in the device or mail client:',
            ...setupSheetLines(created.setup),
            `  acts as:   ${v.mailbox} upstream`,
            `  expires:   ${expires}`,
            `  networks:  ${v.allowedNetworks.length ? v.allowedNetworks.join(', ') : 'any'}`,
            ...(v.scopes.includes('smtp') ? [`  mail:      ${describePolicy(v)}`] : []),
            `Turn it off with: passgate app-password turn-off ${v.id}   (revoke for good: passgate app-password revoke ${v.id})`,
            '',
          ].map(printable).join('\n'),
        );
      });
    });

  cmd
    .command('list')
    .description('list app passwords (never a hash or a password)')
    .option('--user <address>', 'only this user')
    .option('--search <text>', 'only those whose id, name, user or mailbox contains the text')
    .addOption(new Option('--status <status>', 'only those in this state').choices(STATUSES))
    .addOption(new Option('--all', 'include revoked ones'))
    .option('--json', 'print a JSON array')
    .action(async (opts: { user?: string; search?: string; status?: AppPasswordStatus; all?: boolean; json?: boolean }) => {
      await ctx.withApp(async (app) => {
        const now = app.clock();
        const views = (await app.admin.appPasswords.list(ctx.operator(), { username: opts.user, search: opts.search, status: opts.status })).filter(
          (v) => opts.all || opts.status === 'revoked' || v.revokedAt === null,
        );
        if (opts.json) return ctx.json(views.map((v) => ({ ...v, status: statusOf(v, now) })));
        if (views.length === 0) return ctx.io.stdout('no app passwords\n');
        ctx.io.stdout(
          formatTable(
            ['ID', 'USER', 'NAME', 'SCOPES', 'STATUS', 'CREATED', 'EXPIRES', 'LAST USED'],
            views.map((v) => [
              v.id,
              v.username,
              v.name,
              v.scopes.join(','),
              statusOf(v, now),
              formatTime(v.createdAt),
              v.expiresAt === null ? 'never' : formatTime(v.expiresAt),
              v.lastUsedAt === null ? 'never' : `${formatAge(v.lastUsedAt, now)} ${v.lastUsedIp} ${v.lastUsedProtocol}`,
            ]),
          ),
        );
      });
    });

  cmd
    .command('show')
    .description('show one app password')
    .argument('<id>', 'the id from list')
    .option('--json', 'print one JSON object')
    .action(async (id: string, opts: { json?: boolean }) => {
      await ctx.withApp(async (app) => {
        const view = await app.admin.appPasswords.show(ctx.operator(), id);
        if (opts.json) return ctx.json({ ...view, status: statusOf(view, app.clock()) });
        ctx.io.stdout(describe(view, app.clock()).map(printable).join('\n') + '\n');
      });
    });

  addAppPasswordChangeCommands(cmd, ctx);
  return cmd;
}
