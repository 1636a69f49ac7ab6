import { Command, CommanderError } from 'commander';
import type { EditAppPasswordInput } from '../admin/app-password-admin.js';
import { normalizeUsername, type AppPasswordView } from '../core/app-password-record.js';
import { parseExpiry } from '../core/expiry-input.js';
import { describe, policyInput, type PolicyOptions } from './app-password-options.js';
import type { CliContext } from './cli-context.js';
import { formatTime, printable } from './cli-format.js';

/** Exit status of a change that found nothing to do (already revoked, already off, no passwords): scripts can tell. */
export const EXIT_NOTHING_CHANGED = 3;

function nothingChanged(): never {
  throw new CommanderError(EXIT_NOTHING_CHANGED, 'passgate.exit', '');
}

/** One line of output; text from the store (names) is shown with control characters escaped. */
const say = (ctx: CliContext, line: string) => ctx.io.stdout(`${printable(line)}\n`);

const label = (v: AppPasswordView) => `${v.id} ("${v.name}", ${v.username})`;

/**
 * The commands that change app passwords: revoke, revoke-all, turn-off / turn-on (aliases disable / enable), edit.
 * Each says what happened; one that changed nothing (it was already so) exits 3 instead of 0.
 */
export function addAppPasswordChangeCommands(cmd: Command, ctx: CliContext): void {
  const toggle = (name: 'turn-off' | 'turn-on', alias: string, description: string) =>
    cmd
      .command(name)
      .alias(alias)
      .description(description)
      .argument('<id>', 'the id from list')
      .option('--json', 'print one JSON object')
      .action(async (id: string, opts: { json?: boolean }) => {
        await ctx.withApp(async (app) => {
          const admin = app.admin.appPasswords;
          const { view, changed } = name === 'turn-off' ? await admin.turnOff(ctx.operator(), id) : await admin.turnOn(ctx.operator(), id);
          if (opts.json) ctx.json({ ...view, changed });
          else if (changed) say(ctx, `turned ${name === 'turn-off' ? 'off' : 'on'} ${label(view)}`);
          else if (view.revokedAt !== null) say(ctx, `${label(view)} is revoked (since ${formatTime(view.revokedAt)}); nothing changed`);
          else say(ctx, `${label(view)} was already ${name === 'turn-off' ? `off (since ${formatTime(view.disabledAt)})` : 'on'}; nothing changed`);
          if (!changed) nothingChanged();
        });
      });
  toggle('turn-off', 'disable', 'turn an app password off: refused at login, live sessions cut; turn-on undoes it');
  toggle('turn-on', 'enable', 'turn an app password on again (the device needs nothing new)');

  cmd
    .command('revoke')
    .description('revoke one app password for good; devices using it stop working')
    .argument('<id>', 'the id from list')
    .option('--json', 'print one JSON object')
    .action(async (id: string, opts: { json?: boolean }) => {
      await ctx.withApp(async (app) => {
        const { view, changed } = await app.admin.appPasswords.revoke(ctx.operator(), id);
        if (opts.json) ctx.json({ ...view, changed });
        else if (changed) say(ctx, `revoked ${label(view)}`);
        else say(ctx, `${label(view)} was already revoked (at ${formatTime(view.revokedAt)}); nothing changed`);
        if (!changed) nothingChanged();
      });
    });

  cmd
    .command('revoke-all')
    .description('the emergency stop: revoke every app password of a user')
    .requiredOption('--user <address>', 'the user')
    .option('--json', 'print a JSON array of what was revoked')
    .action(async (opts: { user: string; json?: boolean }) => {
      await ctx.withApp(async (app) => {
        const user = normalizeUsername(opts.user);
        const { revoked } = await app.admin.appPasswords.revokeAll(ctx.operator(), user);
        if (opts.json) ctx.json(revoked);
        else if (revoked.length > 0) {
          say(ctx, `revoked ${revoked.length} app password${revoked.length === 1 ? '' : 's'} of ${user}`);
          for (const v of revoked) say(ctx, `  ${v.id}  ${v.name}`);
        } else {
          const held = await app.admin.appPasswords.list(ctx.operator(), { username: user });
          const why = held.length === 0 ? `${user} has no app passwords` : `all ${held.length} app password${held.length === 1 ? '' : 's'} of ${user} were already revoked`;
          say(ctx, `revoked 0: ${why}`);
        }
        if (revoked.length === 0) nothingChanged();
      });
    });

  cmd
    .command('edit')
    .description('change the name, expiry, allowed networks or mail policy; the device keeps its password')
    .argument('<id>', 'the id from list')
    .option('--name <label>', 'a new name')
    .option('--expires <when>', 'a duration from now (90d, 6mo, 1y, 30min), a date (2027-01-31), or never')
    .option('--allow-from <cidr...>', 'only these networks from now on (repeatable); "any" allows every network')
    .option('--allow-sender <address...>', 'SMTP: sender addresses besides the mailbox; "none" clears them')
    .option('--allow-recipient-domain <domain...>', 'SMTP: only these recipient domains; "none": any domain')
    .option('--max-message-size <size>', 'SMTP: largest message, e.g. 10MB; "none": no limit')
    .option('--max-messages-per-hour <n>', 'SMTP: messages per hour; "none": no limit')
    .option('--max-messages-per-day <n>', 'SMTP: messages per day; "none": no limit')
    .option('--check-from-header <on|off|default>', 'SMTP: refuse a From header that is not the mailbox or an allowed sender; default: smtp.check_from_header')
    .option('--json', 'print one JSON object')
    .action(async (id: string, opts: PolicyOptions & { name?: string; expires?: string; allowFrom?: string[]; json?: boolean }) => {
      await ctx.withApp(async (app) => {
        const expiry = opts.expires === undefined ? undefined : parseExpiry(opts.expires, app.clock(), '--expires');
        const policy = policyInput(opts);
        const input: EditAppPasswordInput = {
          name: opts.name,
          expiresAt: expiry?.at,
          allowedNetworks: opts.allowFrom === undefined ? undefined : opts.allowFrom.length === 1 && /^any$/i.test(opts.allowFrom[0]!) ? [] : opts.allowFrom,
          policy: Object.keys(policy).length === 0 ? undefined : policy,
        };
        const view = await app.admin.appPasswords.edit(ctx.operator(), id, input);
        if (opts.json) return ctx.json(view);
        const lines = [`changed ${label(view)}`];
        if (expiry !== undefined) lines.push(`expires: ${view.expiresAt === null ? 'never' : formatTime(view.expiresAt)} (understood "${opts.expires}" as ${expiry.understood})`);
        lines.push('', ...describe(view, app.clock()));
        ctx.io.stdout(lines.map(printable).join('\n') + '\n');
      });
    });
}
