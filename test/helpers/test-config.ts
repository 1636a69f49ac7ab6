import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { stringify } from 'yaml';
import { loadConfig } from '../../src/config/config-loader.js';
import type { Config } from '../../src/config/config-schema.js';

/** Cheap argon2 parameters for tests that are not about argon2's cost. */
export const FAST_ARGON2 = { memory_kib: 1024, time_cost: 1, parallelism: 1 };

export interface TestConfig {
  dir: string;
  file: string;
  config: Config;
  cleanup(): void;
}

/** Writes `tree` as a YAML file in a fresh temporary folder and loads it the way passgate does. */
export function makeTestConfig(tree: Record<string, unknown> = {}): TestConfig {
  const dir = mkdtempSync(join(tmpdir(), 'passgate-test-'));
  const file = join(dir, 'passgate.yaml');
  const full = {
    log: { level: 'silent' },
    ...tree,
    security: { pepper: 'test-pepper-0123456789abcdef', argon2: FAST_ARGON2, ...(tree.security as object | undefined) },
  };
  writeFileSync(file, stringify(full), { mode: 0o600 }); // it holds the pepper: others must not read it
  const { config } = loadConfig({ path: file, env: {}, cwd: dir });
  return { dir, file, config, cleanup: () => rmSync(dir, { recursive: true, force: true }) };
}
