import { Command } from 'commander';
import { startServices } from '../app.js';
import { PASSGATE_VERSION } from '../version.js';
import type { CliContext } from './cli-context.js';

/** Past the grace period, what closing may still take: half-closed sockets (smtp-server: 5 s), TLS handshakes. */
const CLOSE_MARGIN_MS = 15_000;

/**
 * `passgate serve`: runs the listeners until SIGTERM or SIGINT, then drains (services.close: /readyz 503, stop
 * accepting, 421 to idle SMTP connections, `* BYE` to IMAP sessions, transactions in flight get up to
 * `shutdown_grace_seconds`) and exits 0. A second SIGTERM or SIGINT exits at once (1). SIGHUP reloads the TLS
 * certificates, also while draining (its default action would kill the process).
 */
export function serveCommand(ctx: CliContext): Command {
  return new Command('serve').description('run the gateway (SMTP and IMAP listeners, and the web portal when enabled) until SIGTERM').action(async () => {
    await ctx.withApp(
      async (app) => {
        const { logger } = app;
        const services = await startServices(app);
        logger.info(
          { version: PASSGATE_VERSION, node: process.version, smtp: services.smtp?.ports() ?? {}, imap: services.imap?.ports() ?? {}, pop3: services.pop3?.ports() ?? {}, ops: services.ops?.port ?? null, portal: services.portal?.port ?? null },
          'passgate started',
        );
        // A wrong secret or a lost grant is said now (log, metric, /readyz body), not at the first device's login.
        if (app.oauth) void app.oauth.checkAtStart();
        const onHup = () => void services.tls.reload().then((ok) => logger.info({ ok }, 'certificates reloaded'));
        process.on('SIGHUP', onHup);
        const signal = await new Promise<NodeJS.Signals>((resolve) => {
          const first = (received: NodeJS.Signals) => {
            process.off('SIGTERM', first);
            process.off('SIGINT', first);
            // From now on a second signal means "stop now": an operator or an orchestrator out of patience.
            const again = (second: NodeJS.Signals) => {
              logger.warn({ signal: second }, 'passgate stopping at once (second signal)');
              process.exit(1);
            };
            process.once('SIGTERM', again);
            process.once('SIGINT', again);
            resolve(received);
          };
          process.on('SIGTERM', first);
          process.on('SIGINT', first);
        });
        const graceMs = app.config.shutdown_grace_seconds * 1000;
        logger.info({ signal, graceMs }, 'passgate stopping');
        // Closing is bounded by its own timers; this is the backstop should one of them fail to fire.
        const backstop = setTimeout(() => {
          logger.error({ graceMs }, 'passgate did not stop within the grace period and its margin, exiting');
          process.exit(1);
        }, graceMs + CLOSE_MARGIN_MS);
        backstop.unref();
        try {
          await services.close(graceMs);
        } finally {
          process.off('SIGHUP', onHup);
        }
        logger.info({}, 'passgate stopped');
      },
      { server: true },
    );
  });
}
