import { Command, CommanderError } from 'commander';
import { appPasswordCommand } from './commands/app-password-command.js';
import { auditCommand } from './commands/audit-command.js';
import { CliContext, type CliIo } from './commands/cli-context.js';
import { doctorCommand } from './commands/doctor-command.js';
import { oauthCommand } from './commands/oauth-command.js';
import { serveCommand } from './commands/serve-command.js';
import { storeCommand } from './commands/store-command.js';
import { isGatewayError } from './core/gateway-error.js';
import { PASSGATE_VERSION } from './version.js';

const processIo: CliIo = {
  stdout: (text) => process.stdout.write(text),
  stderr: (text) => process.stderr.write(text),
  env: process.env,
  cwd: process.cwd(),
  stdin: process.stdin,
  stdoutIsTty: process.stdout.isTTY === true,
  stdinIsTty: process.stdin.isTTY === true,
  writeStdout: (text) =>
    new Promise((resolve, reject) => {
      // A failed write also emits 'error' on the stream, after the callback: the listener stays to take it.
      const onError = (error: Error) => reject(error);
      process.stdout.once('error', onError);
      process.stdout.write(text, (error) => {
        if (error) return reject(error);
        process.stdout.off('error', onError);
        resolve();
      });
    }),
};

/** Exit codes: 0 success, 1 the operation failed, 2 the command line, configuration or input is wrong. */
export async function main(argv: string[], io: CliIo = processIo): Promise<number> {
  const program = new Command('passgate')
    .description('legacy-auth mail gateway: app passwords in, OAuth 2.0 upstream out')
    .option('-c, --config <file>', 'configuration file (default: $PASSGATE_CONFIG, else ./passgate.yaml)')
    .version(PASSGATE_VERSION, '-V, --version', 'print the version')
    .exitOverride()
    .configureOutput({ writeOut: io.stdout, writeErr: io.stderr })
    .showHelpAfterError('(run with --help for usage)');
  const ctx = new CliContext(io, () => program.opts<{ config?: string }>().config);
  program.addCommand(appPasswordCommand(ctx));
  program.addCommand(auditCommand(ctx));
  program.addCommand(storeCommand(ctx));
  program.addCommand(oauthCommand(ctx));
  program.addCommand(serveCommand(ctx));
  program.addCommand(doctorCommand(ctx, () => program.opts<{ config?: string }>().config));
  for (const command of program.commands) {
    command.exitOverride();
    for (const sub of command.commands) sub.exitOverride();
  }

  try {
    await program.parseAsync(argv);
    return 0;
  } catch (error) {
    if (error instanceof CommanderError) {
      if (error.code === 'passgate.exit') return error.exitCode; // a command that printed its own verdict (doctor)
      return error.code === 'commander.helpDisplayed' || error.code === 'commander.version' || error.exitCode === 0 ? 0 : 2;
    }
    if (isGatewayError(error)) {
      io.stderr(`passgate: ${error.message}\n`);
      return ['PG_CONFIG_INVALID', 'PG_INVALID_INPUT'].includes(error.code) ? 2 : 1;
    }
    io.stderr(`passgate: unexpected error: ${(error as Error).stack ?? String(error)}\n`);
    return 1;
  }
}
