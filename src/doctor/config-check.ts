import { loadConfig, type LoadConfigOptions } from '../config/config-loader.js';
import type { Config } from '../config/config-schema.js';
import { isGatewayError } from '../core/gateway-error.js';
import { fail, pass, warn, type CheckResult } from './doctor-report.js';

/**
 * Loads the configuration as `serve` does, but never creates the embedded pepper. An invalid one is a failed check
 * whose hint lists each key at fault (the loader names them); the loader's warnings (no pepper yet, a pepper file
 * others can read) warn.
 */
export function checkConfig(options: LoadConfigOptions): { result: CheckResult; config: Config | null } {
  try {
    // Doctor writes nothing: a fresh install's pepper is left for serve to create.
    const { config, warnings } = loadConfig({ ...options, createPepper: false });
    if (warnings.length > 0) return { config, result: warn('config', `loaded ${config.source}`, warnings.join('\n')) };
    return { config, result: pass('config', `loaded ${config.source}`) };
  } catch (error) {
    if (!isGatewayError(error, 'PG_CONFIG_INVALID')) throw error;
    const [first = '', ...rest] = error.message.split('\n');
    const lines = rest.map((l) => l.replace(/^\s*-\s*/, ''));
    const hint = 'Fix the key named: config/passgate.example.yaml documents every key.';
    return { config: null, result: fail('config', `${first.replace(/:$/, '')}: ${lines.join('; ')}`, hint) };
  }
}
