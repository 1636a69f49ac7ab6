import assert from 'node:assert/strict';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Writable } from 'node:stream';
import { describe, it } from 'node:test';
import { openApp } from '../../src/app.js';
import { createLogger } from '../../src/observability/logger.js';
import { startRedis } from '../helpers/redis-server.js';
import { makeTestConfig } from '../helpers/test-config.js';

/** Opens passgate as `serve` does on the given Redis and returns the warnings it logged at start. */
async function startWarnings(url: string, prefix: string): Promise<string[]> {
  const lines: string[] = [];
  const sink = new Writable({
    write(chunk: Buffer, _enc, done) {
      lines.push(...chunk.toString().trim().split('\n'));
      done();
    },
  });
  const tc = makeTestConfig({ redis: { url, key_prefix: prefix } });
  try {
    const app = await openApp(tc.config, { logger: createLogger('warn', sink) });
    await app.close();
  } finally {
    tc.cleanup();
  }
  return lines.map((l) => JSON.parse(l) as { level: string; msg: string }).filter((l) => l.level === 'warn').map((l) => l.msg);
}

// docs/security.md, docs/scaling.md: passgate warns at start when Redis may evict keys or has no persistence (issue 21).
describe('serve on Redis: warnings about eviction and persistence at start', () => {
  it('warns about an evicting Redis without persistence, naming the setting to change', async () => {
    const redis = await startRedis({ own: true, args: ['--maxmemory-policy', 'allkeys-lru'] });
    try {
      const warnings = await startWarnings(redis.url, redis.prefix);
      assert.ok(warnings.some((w) => /maxmemory-policy is "allkeys-lru".*set it to "noeviction"/.test(w)), warnings.join('\n'));
      assert.ok(warnings.some((w) => /no persistence \(appendonly no, save ""\)/.test(w)), warnings.join('\n'));
    } finally {
      await redis.close();
    }
  });

  it('says nothing about a Redis that never evicts and persists (AOF)', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'passgate-redis-aof-'));
    const redis = await startRedis({ own: true, persistDir: dir, args: ['--maxmemory-policy', 'noeviction'] });
    try {
      const warnings = await startWarnings(redis.url, redis.prefix);
      assert.deepEqual(warnings.filter((w) => /Redis/.test(w)), []);
    } finally {
      await redis.close();
      rmSync(dir, { recursive: true, force: true });
    }
  });
});
