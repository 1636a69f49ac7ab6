import { readFileSync } from 'node:fs';

/**
 * passgate's version, from package.json (one level above both src/ and the compiled dist/). Shown by
 * `passgate --version`, in the start log line and as passgate_build_info.
 */
export const PASSGATE_VERSION: string = (JSON.parse(readFileSync(new URL('../package.json', import.meta.url), 'utf8')) as { version: string }).version;
