import { Command } from 'commander';
import { startServices } from '../app.js';
import type { CliContext } from './cli-context.js';

const GRACE_MS = 10_000;

/**
 * `passgate serve`: runs the listeners until SIGTERM or SIGINT, then stops accepting, lets sessions in flight
 * finish for up to 10 s, and exits 0. SIGHUP reloads the TLS certificates.
 */
export function serveCommand(ctx: CliContext): Command {
  return new Command('serve').description('run the gateway (SMTP and IMAP listeners) until SIGTERM').action(async () => {
    await ctx.withApp(
      async (app) => {
        const services = await startServices(app);
        app.logger.info({ smtp: services.smtp?.ports() ?? {}, imap: services.imap?.ports() ?? {}, ops: services.ops?.port ?? null }, 'passgate started');
        const onHup = () => void services.tls.reload().then((ok) => app.logger.info({ ok }, 'certificates reloaded'));
        process.on('SIGHUP', onHup);
        const signal = await new Promise<NodeJS.Signals>((resolve) => {
          process.once('SIGTERM', () => resolve('SIGTERM'));
          process.once('SIGINT', () => resolve('SIGINT'));
        });
        app.logger.info({ signal, graceMs: GRACE_MS }, 'passgate stopping');
        process.off('SIGHUP', onHup);
        await services.close(GRACE_MS);
        app.logger.info({}, 'passgate stopped');
      },
      { server: true },
    );
  });
}
