import { GatewayError } from './gateway-error.js';

const UNIT_MS: Record<string, number> = {
  s: 1_000,
  m: 60_000,
  h: 3_600_000,
  d: 86_400_000,
  w: 604_800_000,
};

/**
 * Parses a human duration such as `90d`, `12h`, `30m`, `45s` or `2w` into milliseconds.
 * Used by the CLI (`--expires 90d`, `--since 1h`), so the error says what forms are accepted.
 */
export function parseDuration(text: string): number {
  const match = /^\s*(\d+)\s*([smhdw])\s*$/i.exec(text);
  if (!match) {
    throw new GatewayError(
      'PG_INVALID_INPUT',
      `invalid duration "${text}": use a whole number and a unit, e.g. 45s, 30m, 12h, 90d, 2w`,
    );
  }
  const amount = Number(match[1]);
  const unit = UNIT_MS[match[2]!.toLowerCase()]!;
  if (amount <= 0) throw new GatewayError('PG_INVALID_INPUT', `invalid duration "${text}": must be greater than zero`);
  return amount * unit;
}
