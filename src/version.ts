import { readFileSync } from 'node:fs';

/**
 * passgate's version, from package.json (one level above both src/ and the compiled dist/). Shown by
 * `passgate --version` and in the start log line.
 */
export const PASSGATE_VERSION: string = (JSON.parse(readFileSync(new URL('../package.json', import.meta.url), 'utf8')) as { version: string }).version;
