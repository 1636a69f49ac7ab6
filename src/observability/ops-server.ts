import { once } from 'node:events';
import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import type { OpsConfig } from '../config/config-schema.js';
import type { CredentialStore } from '../core/credential-store.js';
import type { EventLogger } from '../core/event-logger.js';
import type { TokenProvider } from '../core/token-provider.js';
import type { Metrics } from './metrics.js';

export interface OpsServerDeps {
  metrics: Metrics;
  store: CredentialStore;
  tokens: TokenProvider | null;
  log: EventLogger;
}

const READY_TIMEOUT_MS = 2000;

/**
 * The operators' HTTP port: `/metrics` (Prometheus text format), `/healthz` (200 while the process serves) and
 * `/readyz`: 200 when the store answers a ping within 2 s — SQLite, or Redis when configured, which then also
 * holds the limits and token state — and shutdown has not begun; 503 otherwise. The body lists the token state
 * of each mode and mailbox, which never makes an instance unready: a provider outage or one mailbox's lost consent
 * is the same on every instance, so taking instances out of a balancer would only add an outage (logged-in IMAP
 * sessions and cached tokens keep working); alerts on `passgate_token_requests_total` watch it instead.
 */
export class OpsServer {
  private readonly server: Server;
  private draining = false;

  constructor(
    private readonly config: OpsConfig,
    private readonly deps: OpsServerDeps,
  ) {
    this.server = createServer((req, res) => {
      void this.route(req.url ?? '/').then(
        ({ status, type, body }) => {
          res.writeHead(status, { 'content-type': type, 'cache-control': 'no-store' });
          res.end(body);
        },
        (error: Error) => {
          deps.log.error({ cause: error.message }, 'ops request failed');
          res.writeHead(500).end();
        },
      );
    });
    this.server.on('error', (error: Error) => deps.log.error({ cause: error.message }, 'ops server error'));
    deps.metrics.observeReadiness(async () => (await this.readiness()).ready);
  }

  private async route(url: string): Promise<{ status: number; type: string; body: string }> {
    const path = url.split('?')[0];
    if (path === '/metrics') {
      return { status: 200, type: this.deps.metrics.registry.contentType, body: await this.deps.metrics.registry.metrics() };
    }
    if (path === '/healthz') return { status: 200, type: 'text/plain', body: 'ok\n' };
    if (path === '/readyz') {
      const { ready, checks } = await this.readiness();
      const tokens = this.deps.tokens ? await this.deps.tokens.status().catch(() => []) : [];
      // lastError: the provider's refusal as passgate recorded it (codes and text, never a token).
      const body = { ready, checks, tokens: tokens.map((t) => ({ key: t.key, state: t.state, failingSince: t.failingSince, lastError: t.lastError })) };
      return { status: ready ? 200 : 503, type: 'application/json', body: `${JSON.stringify(body)}\n` };
    }
    return { status: 404, type: 'text/plain', body: 'not found\n' };
  }

  /** What /readyz and the passgate_ready gauge decide on: the store answers, and shutdown has not begun. */
  private async readiness(): Promise<{ ready: boolean; checks: Record<string, string> }> {
    const checks: Record<string, string> = { serving: this.draining ? 'shutting down' : 'ok' };
    let ready = !this.draining;
    let timer: NodeJS.Timeout | undefined;
    try {
      await Promise.race([
        this.deps.store.ping(),
        new Promise((_, reject) => (timer = setTimeout(() => reject(new Error(`no answer within ${READY_TIMEOUT_MS} ms`)), READY_TIMEOUT_MS))),
      ]);
      checks.store = 'ok';
    } catch (error) {
      ready = false;
      checks.store = (error as Error).message;
    } finally {
      clearTimeout(timer);
    }
    return { ready, checks };
  }

  async listen(): Promise<number> {
    this.server.listen(this.config.port, this.config.host);
    await once(this.server, 'listening');
    const port = (this.server.address() as AddressInfo).port;
    this.deps.log.info({ host: this.config.host, port }, 'ops server started');
    return port;
  }

  get port(): number {
    return (this.server.address() as AddressInfo).port;
  }

  /**
   * Shutdown has begun: /readyz answers 503 from now on, so a balancer sends no new clients while the listeners
   * drain; /healthz and /metrics keep answering until close().
   */
  drain(): void {
    this.draining = true;
  }

  async close(): Promise<void> {
    this.server.closeAllConnections();
    await new Promise<void>((resolve) => this.server.close(() => resolve()));
  }
}
