import { readFileSync } from 'node:fs';
import { Command, CommanderError } from 'commander';
import type { App } from '../app.js';
import { normalizeUsername } from '../core/app-password-record.js';
import { GatewayError } from '../core/gateway-error.js';
import type { TokenStatus } from '../core/token-provider.js';
import type { CliContext } from './cli-context.js';
import { formatTable, formatTime, printable } from './cli-format.js';

function requireOAuth(app: App): NonNullable<App['oauth']> {
  if (!app.oauth) throw new GatewayError('PG_CONFIG_INVALID', 'oauth.client_id: OAuth is not configured (see config/passgate.example.yaml, section oauth)');
  return app.oauth;
}

function requireDelegated(app: App, command: string): NonNullable<App['oauth']> {
  const oauth = requireOAuth(app);
  if (app.config.oauth.mode !== 'delegated') {
    throw new GatewayError('PG_CONFIG_INVALID', `oauth.mode: ${command} is for delegated mode; in app mode one client-credentials token serves every mailbox`);
  }
  return oauth;
}

/** An operator connected a mailbox (device code or import): recorded with who did it. */
function auditConnect(app: App, mailbox: string, detail: string): Promise<void> {
  return app.audit.append({
    at: app.clock(),
    action: 'oauth.connect',
    protocol: null,
    username: mailbox,
    clientIp: null,
    appPasswordId: null,
    appPasswordName: null,
    reason: 'ok',
    detail,
  });
}

async function readStdin(ctx: CliContext): Promise<string> {
  let text = '';
  for await (const chunk of ctx.io.stdin) text += chunk.toString();
  return text;
}

/**
 * States an operator must act on: a lost grant (`oauth connect` again) or a failing token request (configuration,
 * or a provider that keeps failing; LAST ERROR says which). `unknown` is an app token not fetched yet.
 */
const NEEDS_ATTENTION: ReadonlySet<TokenStatus['state']> = new Set(['needs-connect', 'failing']);

export function oauthCommand(ctx: CliContext): Command {
  const cmd = new Command('oauth').description('upstream OAuth 2.0 tokens: status, connect a mailbox, import a refresh token');

  cmd
    .command('status')
    .description('each configured mode and mailbox with its token state; exit 1 when one needs attention (needs-connect or failing)')
    .option('--json', 'print a JSON array')
    .addHelpText('after', '\nExit status: 0 when every token is ok (or not fetched yet), 1 when any is needs-connect (run oauth connect) or failing\n(see LAST ERROR), 2 on a configuration error.')
    .action(async (opts: { json?: boolean }) => {
      const statuses = await ctx.withApp(async (app) => requireOAuth(app).tokens.status());
      if (opts.json) ctx.json(statuses);
      else if (statuses.length === 0) ctx.io.stdout('no mailbox connected yet: passgate oauth connect --mailbox u@example.com\n');
      else {
        ctx.io.stdout(
          formatTable(
            ['KEY', 'MODE', 'STATE', 'TOKEN EXPIRES', 'LAST SUCCESS', 'FAILING SINCE', 'LAST ERROR'],
            statuses.map((s) => [
              s.key,
              s.mode,
              s.state,
              formatTime(s.accessExpiresAt),
              formatTime(s.lastSuccessAt),
              formatTime(s.failingSince),
              (s.lastError ?? '').split(/\r?\n/)[0]!,
            ]),
          ),
        );
        // A provider's answer over several lines (Microsoft: trace and correlation ids) is printed whole below the
        // table, line by line, rather than squeezed into its cell as escaped line breaks.
        for (const s of statuses.filter((x) => /\r?\n/.test(x.lastError ?? ''))) {
          ctx.io.stdout(`\n${s.key}: ${s.lastError!.split(/\r?\n/).map((line) => printable(line)).join('\n  ')}\n`);
        }
      }
      // The table is the output; the exit code carries the verdict, for cron jobs and monitoring (main.ts returns it).
      if (statuses.some((s) => NEEDS_ATTENTION.has(s.state))) throw new CommanderError(1, 'passgate.exit', '');
    });

  cmd
    .command('connect')
    .description('delegated mode: sign a mailbox in through the device-code flow and store its refresh token')
    .requiredOption('--mailbox <address>', 'the mailbox to connect')
    .action(async (opts: { mailbox: string }) => {
      const mailbox = normalizeUsername(opts.mailbox);
      await ctx.withApp(async (app) => {
        const oauth = requireDelegated(app, 'oauth connect');
        const authorization = await oauth.client.startDeviceAuthorization();
        ctx.io.stdout(
          [
            `To connect ${mailbox}, sign in as that mailbox:`,
            `  open:  ${authorization.verificationUri}`,
            `  code:  ${authorization.userCode}`,
            ...(authorization.message ? [`  (${authorization.message})`] : []),
            `Waiting up to ${Math.round(authorization.expiresInSeconds / 60)} minutes...`,
            '',
          ].join('\n'),
        );
        const grant = await oauth.client.pollDeviceAuthorization(authorization);
        if (!grant.refreshToken) {
          throw new GatewayError('PG_TOKEN_UNAVAILABLE', 'the provider returned no refresh token: request the offline_access scope (oauth.scopes)');
        }
        await oauth.tokens.saveRefreshToken(mailbox, grant.refreshToken);
        await auditConnect(app, mailbox, `device code, by ${ctx.actor()}`);
        ctx.io.stdout(`connected ${mailbox}: its refresh token is stored encrypted\n`);
      });
    });

  cmd
    .command('import')
    .description('delegated mode: store a refresh token obtained elsewhere, then prove it works')
    .requiredOption('--mailbox <address>', 'the mailbox it belongs to')
    .option('--refresh-token-file <file>', 'read the token from this file instead of stdin')
    .action(async (opts: { mailbox: string; refreshTokenFile?: string }) => {
      const mailbox = normalizeUsername(opts.mailbox);
      const text = opts.refreshTokenFile === undefined ? await readStdin(ctx) : readFileSync(opts.refreshTokenFile, 'utf8');
      const refreshToken = text.trim();
      if (refreshToken === '' || /\s/.test(refreshToken)) throw new GatewayError('PG_INVALID_INPUT', 'expected one refresh token');
      await ctx.withApp(async (app) => {
        const oauth = requireDelegated(app, 'oauth import');
        await oauth.tokens.saveRefreshToken(mailbox, refreshToken);
        // Redeem it at once: a bad token is reported now, and the rotated one is what stays stored.
        const token = await oauth.tokens.getAccessToken(mailbox);
        await auditConnect(app, mailbox, `imported, by ${ctx.actor()}`);
        ctx.io.stdout(`imported the refresh token of ${mailbox}; access token valid until ${formatTime(token.expiresAt)}\n`);
      });
    });

  cmd
    .command('disconnect')
    .description('delegated mode: forget a mailbox\'s tokens')
    .requiredOption('--mailbox <address>', 'the mailbox')
    .action(async (opts: { mailbox: string }) => {
      await ctx.withApp(async (app) => {
        const oauth = requireDelegated(app, 'oauth disconnect');
        await oauth.tokens.forget(normalizeUsername(opts.mailbox));
        ctx.io.stdout(`forgot the tokens of ${normalizeUsername(opts.mailbox)}\n`);
      });
    });

  return cmd;
}
