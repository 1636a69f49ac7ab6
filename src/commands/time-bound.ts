import { parseDuration } from '../core/duration.js';
import { GatewayError } from '../core/gateway-error.js';

/** `2026-12-04`, `2026-12-04 09:00`, `2026-12-04T09:00:30`, each optionally with `Z` or an offset. */
const TIME = /^(\d{4}-\d{2}-\d{2})(?:[ T](\d{2}:\d{2}(?::\d{2}(?:\.\d{1,3})?)?)(Z|[+-]\d{2}:?\d{2})?)?$/i;

/**
 * A point in time for `--since` / `--until`: a duration back from now (`1h`, `7d`) or a time. The CLI prints UTC,
 * so a time without a zone is UTC too, and what an admin copies from the output means what it says.
 */
export function parseTimeBound(text: string, now: number): number {
  const trimmed = text.trim();
  if (/^\d+\s*[a-z]$/i.test(trimmed)) return now - parseDuration(trimmed);
  const match = TIME.exec(trimmed);
  const at = match ? Date.parse(`${match[1]}T${match[2] ?? '00:00'}${match[3] ?? 'Z'}`) : NaN;
  if (Number.isNaN(at)) {
    throw new GatewayError(
      'PG_INVALID_INPUT',
      `invalid duration "${text}": use a duration back from now (45s, 30m, 12h, 90d, 2w) or a UTC time (2026-12-04 09:00, 2026-12-04T09:00:30Z)`,
    );
  }
  return at;
}
