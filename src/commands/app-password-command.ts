import { Command, Option } from 'commander';
import { recordStatus, type AppPasswordView } from '../core/app-password-record.js';
import { parseDuration } from '../core/duration.js';
import { GatewayError } from '../core/gateway-error.js';
import { isProtocol, PROTOCOLS, type Protocol } from '../core/protocol.js';
import type { CliContext } from './cli-context.js';
import { formatAge, formatTable, formatTime, printable } from './cli-format.js';

function parseScopes(text: string): Protocol[] {
  const scopes = text.split(',').map((s) => s.trim().toLowerCase()).filter(Boolean);
  for (const scope of scopes) {
    if (!isProtocol(scope)) throw new GatewayError('PG_INVALID_INPUT', `unknown scope "${scope}": use ${PROTOCOLS.join(', ')}`);
  }
  return scopes as Protocol[];
}

/** `90d` (from now) or an absolute date/time such as `2027-01-31` or `2027-01-31T18:00Z`. */
function parseExpiry(text: string, now: number): number {
  if (/^\s*\d+\s*[smhdw]\s*$/i.test(text)) return now + parseDuration(text);
  const at = Date.parse(text);
  if (Number.isNaN(at)) throw new GatewayError('PG_INVALID_INPUT', `invalid --expires "${text}": use a duration (90d) or a date (2027-01-31)`);
  return at;
}

/** `10MB`, `512KB`, `1GB` or plain bytes (powers of 1024, as mail size limits are usually stated). */
function parseSize(text: string): number {
  const match = /^\s*(\d+)\s*([KMG]?)B?\s*$/i.exec(text);
  if (!match) throw new GatewayError('PG_INVALID_INPUT', `invalid size "${text}": use bytes or a unit, e.g. 500KB, 10MB`);
  return Number(match[1]) * 1024 ** ' KMG'.indexOf((match[2] || ' ').toUpperCase());
}

function whole(text: string | undefined, option: string): number | undefined {
  if (text === undefined) return undefined;
  const n = Number(text);
  if (!Number.isInteger(n) || n <= 0) throw new GatewayError('PG_INVALID_INPUT', `invalid ${option} "${text}": expected a whole number above zero`);
  return n;
}

function describePolicy(view: AppPasswordView): string {
  const p = view.policy;
  const parts = [
    `senders: ${[view.mailbox, ...p.allowedSenders].join(', ')}`,
    `recipients: ${p.allowedRecipientDomains.length ? p.allowedRecipientDomains.join(', ') : 'any domain'}`,
    ...(p.maxMessageBytes !== null ? [`max size: ${p.maxMessageBytes} bytes`] : []),
    ...(p.maxMessagesPerHour !== null ? [`${p.maxMessagesPerHour}/hour`] : []),
    ...(p.maxMessagesPerDay !== null ? [`${p.maxMessagesPerDay}/day`] : []),
  ];
  return parts.join('; ');
}

function describe(view: AppPasswordView, now: number): string[] {
  const used = view.lastUsedAt === null ? 'never' : `${formatAge(view.lastUsedAt, now)} from ${view.lastUsedIp} over ${view.lastUsedProtocol}`;
  return [
    `id:            ${view.id}`,
    `user:          ${view.username}`,
    `mailbox:       ${view.mailbox}`,
    `name:          ${view.name}`,
    `status:        ${recordStatus(view, now)}`,
    `scopes:        ${view.scopes.join(', ')}`,
    `allowed from:  ${view.allowedNetworks.length ? view.allowedNetworks.join(', ') : 'any network'}`,
    `expires:       ${view.expiresAt === null ? 'never' : formatTime(view.expiresAt)}`,
    `created:       ${formatTime(view.createdAt)} by ${view.createdBy}`,
    `last used:     ${used}`,
    `uses:          ${view.useCount}`,
    `mail policy:   ${describePolicy(view)}`,
    ...(view.revokedAt !== null ? [`revoked:       ${formatTime(view.revokedAt)}`] : []),
  ];
}

export function appPasswordCommand(ctx: CliContext): Command {
  const cmd = new Command('app-password').description('create, list and revoke app passwords');

  cmd
    .command('create')
    .description('create an app password and print it once')
    .requiredOption('--user <address>', 'the username the client will type (usually the mailbox address)')
    .requiredOption('--name <label>', 'what holds it, e.g. "Scanner, 3rd floor"')
    .option('--mailbox <address>', 'the upstream mailbox it acts as (default: the user)')
    .option('--scope <list>', `comma-separated protocols: ${PROTOCOLS.join(',')}`, PROTOCOLS.join(','))
    .option('--expires <when>', 'a duration such as 90d, or a date such as 2027-01-31')
    .option('--allow-from <cidr...>', 'only accept it from these networks (repeatable)')
    .option('--length <letters>', 'letters in the password, for devices with short password fields')
    .option('--allow-sender <address...>', 'SMTP: sender addresses allowed besides the mailbox (repeatable)')
    .option('--allow-recipient-domain <domain...>', 'SMTP: only these recipient domains (repeatable)')
    .option('--max-message-size <size>', 'SMTP: largest message, e.g. 10MB')
    .option('--max-messages-per-hour <n>', 'SMTP: messages per hour')
    .option('--max-messages-per-day <n>', 'SMTP: messages per day')
    .option('--json', 'print one JSON object')
    .action(async (opts: {
      user: string;
      name: string;
      mailbox?: string;
      scope: string;
      expires?: string;
      allowFrom?: string[];
      length?: string;
      allowSender?: string[];
      allowRecipientDomain?: string[];
      maxMessageSize?: string;
      maxMessagesPerHour?: string;
      maxMessagesPerDay?: string;
      json?: boolean;
    }) => {
      const length = opts.length === undefined ? undefined : Number(opts.length);
      if (length !== undefined && !Number.isInteger(length)) throw new GatewayError('PG_INVALID_INPUT', `invalid --length "${opts.length}"`);
      await ctx.withApp(async (app) => {
        const created = await app.admin.create({
          username: opts.user,
          name: opts.name,
          mailbox: opts.mailbox,
          scopes: parseScopes(opts.scope),
          allowedNetworks: opts.allowFrom,
          expiresAt: opts.expires === undefined ? null : parseExpiry(opts.expires, app.clock()),
          createdBy: ctx.actor(),
          length,
          policy: {
            allowedSenders: opts.allowSender,
            allowedRecipientDomains: opts.allowRecipientDomain,
            maxMessageBytes: opts.maxMessageSize === undefined ? null : parseSize(opts.maxMessageSize),
            maxMessagesPerHour: whole(opts.maxMessagesPerHour, '--max-messages-per-hour') ?? null,
            maxMessagesPerDay: whole(opts.maxMessagesPerDay, '--max-messages-per-day') ?? null,
          },
        });
        if (opts.json) return ctx.json({ ...created.view, password: created.password });
        const v = created.view;
        ctx.io.stdout(
          [
            `App password "${v.name}" created for ${v.username} (id ${v.id}).`,
            '',
            `    ${created.password}`,
            '',
            'This is the only time it is shown. Enter it in the device or mail client:',
            `  username:  ${v.username}`,
            '  password:  the code above (spaces, dashes and capitals do not matter)',
            ...(v.scopes.includes('smtp') ? ['  SMTP:      this passgate host, port 587 with STARTTLS or 465 with TLS, authentication on'] : []),
            ...(v.scopes.includes('imap') ? ['  IMAP:      this passgate host, port 993 with TLS or 143 with STARTTLS'] : []),
            `  acts as:   ${v.mailbox} upstream`,
            `  expires:   ${v.expiresAt === null ? 'never' : formatTime(v.expiresAt)}`,
            `  networks:  ${v.allowedNetworks.length ? v.allowedNetworks.join(', ') : 'any'}`,
            ...(v.scopes.includes('smtp') ? [`  mail:      ${describePolicy(v)}`] : []),
            `Revoke it with: passgate app-password revoke ${v.id}`,
            '',
          ].join('\n'),
        );
      });
    });

  cmd
    .command('list')
    .description('list app passwords (never a hash or a password)')
    .option('--user <address>', 'only this user')
    .addOption(new Option('--all', 'include revoked ones'))
    .option('--json', 'print a JSON array')
    .action(async (opts: { user?: string; all?: boolean; json?: boolean }) => {
      await ctx.withApp(async (app) => {
        const now = app.clock();
        const views = (await app.admin.list({ username: opts.user })).filter((v) => opts.all || v.revokedAt === null);
        if (opts.json) return ctx.json(views.map((v) => ({ ...v, status: recordStatus(v, now) })));
        if (views.length === 0) return ctx.io.stdout('no app passwords\n');
        ctx.io.stdout(
          formatTable(
            ['ID', 'USER', 'NAME', 'SCOPES', 'STATUS', 'CREATED', 'EXPIRES', 'LAST USED'],
            views.map((v) => [
              v.id,
              v.username,
              v.name,
              v.scopes.join(','),
              recordStatus(v, now),
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
        const view = await app.admin.show(id);
        if (opts.json) return ctx.json({ ...view, status: recordStatus(view, app.clock()) });
        ctx.io.stdout(describe(view, app.clock()).map(printable).join('\n') + '\n');
      });
    });

  cmd
    .command('revoke')
    .description('revoke one app password; devices using it stop working')
    .argument('<id>', 'the id from list')
    .option('--json', 'print one JSON object')
    .action(async (id: string, opts: { json?: boolean }) => {
      await ctx.withApp(async (app) => {
        const view = await app.admin.revoke(id, ctx.actor());
        if (opts.json) return ctx.json(view);
        ctx.io.stdout(`revoked ${view.id} ("${view.name}", ${view.username})\n`);
      });
    });

  cmd
    .command('revoke-all')
    .description('the emergency stop: revoke every app password of a user')
    .requiredOption('--user <address>', 'the user')
    .option('--json', 'print a JSON array of what was revoked')
    .action(async (opts: { user: string; json?: boolean }) => {
      await ctx.withApp(async (app) => {
        const views = await app.admin.revokeAll(opts.user, ctx.actor());
        if (opts.json) return ctx.json(views);
        ctx.io.stdout(`revoked ${views.length} app password${views.length === 1 ? '' : 's'} of ${opts.user.trim().toLowerCase()}\n`);
        for (const v of views) ctx.io.stdout(`  ${v.id}  ${v.name}\n`);
      });
    });

  return cmd;
}
