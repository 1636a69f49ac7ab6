import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { describe, it } from 'node:test';
import type { CredentialStore } from '../../../src/core/credential-store.js';
import { silentEventLogger } from '../../../src/core/event-logger.js';
import type { TokenProvider, TokenStatus } from '../../../src/core/token-provider.js';
import { Metrics } from '../../../src/observability/metrics.js';
import { OpsServer } from '../../../src/observability/ops-server.js';

async function start(ping: () => Promise<void>, tokens: TokenStatus[] = []) {
  const metrics = new Metrics();
  const store = { ping } as unknown as CredentialStore;
  const provider = { status: async () => tokens } as unknown as TokenProvider;
  const ops = new OpsServer({ enabled: true, host: '127.0.0.1', port: 0 }, { metrics, store, tokens: provider, log: silentEventLogger });
  const port = await ops.listen();
  const readyz = async () => {
    const res = await fetch(`http://127.0.0.1:${port}/readyz`);
    return { status: res.status, body: (await res.json()) as { ready: boolean; checks: Record<string, string>; tokens: { key: string; state: string }[] } };
  };
  const readyGauge = async () => /^passgate_ready (\d)$/m.exec(await (await fetch(`http://127.0.0.1:${port}/metrics`)).text())?.[1];
  return { ops, readyz, readyGauge };
}

describe('OpsServer /readyz and passgate_ready', () => {
  it('is ready while the store answers, even with a failing token; unready once draining', async () => {
    const failing = { key: 'mailbox:a@x', mode: 'delegated', state: 'failing', failingSince: 1 } as unknown as TokenStatus;
    const { ops, readyz, readyGauge } = await start(async () => {}, [failing]);
    try {
      let r = await readyz();
      assert.equal(r.status, 200);
      assert.deepEqual([r.body.ready, r.body.checks, r.body.tokens[0]?.state], [true, { serving: 'ok', store: 'ok' }, 'failing']);
      assert.equal(await readyGauge(), '1');
      ops.drain();
      r = await readyz();
      assert.equal(r.status, 503);
      assert.deepEqual(r.body.checks, { serving: 'shutting down', store: 'ok' });
      assert.equal(await readyGauge(), '0');
    } finally {
      await ops.close();
    }
  });

  it('is unready when the store fails or does not answer within 2 s', async () => {
    const broken = await start(async () => {
      throw new Error('redis: connection refused');
    });
    const silent = await start(() => new Promise(() => {}));
    try {
      const r = await broken.readyz();
      assert.deepEqual([r.status, r.body.checks.store], [503, 'redis: connection refused']);
      assert.equal(await broken.readyGauge(), '0');
      const s = await silent.readyz();
      assert.deepEqual([s.status, s.body.checks.store], [503, 'no answer within 2000 ms']);
    } finally {
      await broken.ops.close();
      await silent.ops.close();
    }
  });
});

describe('passgate_build_info', () => {
  it('names the package version and the Node.js version, with the value 1', async () => {
    const { version } = JSON.parse(readFileSync(new URL('../../../package.json', import.meta.url), 'utf8')) as { version: string };
    const text = await new Metrics().registry.metrics();
    assert.match(text, new RegExp(`^passgate_build_info\\{version="${version.replace(/\./g, '\\.')}",node="${process.version.replace(/\./g, '\\.')}"\\} 1$`, 'm'));
  });
});
