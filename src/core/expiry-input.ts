import { GatewayError } from './gateway-error.js';

/** An expiry as a person typed it, and what passgate understood (printed back, so a surprise shows at once). */
export interface ParsedExpiry {
  /** Epoch ms, or null for "never". */
  at: number | null;
  understood: string;
}

type Unit = { ms: number; months?: never; word: string } | { months: number; ms?: never; word: string };

/** Every spelling maps to one unit; `m` alone is refused: minutes to some, months to others. */
const UNITS: Record<string, Unit> = {};
for (const [spellings, unit] of [
  [['s', 'sec', 'secs', 'second', 'seconds'], { ms: 1_000, word: 'second' }],
  [['min', 'mins', 'minute', 'minutes'], { ms: 60_000, word: 'minute' }],
  [['h', 'hr', 'hrs', 'hour', 'hours'], { ms: 3_600_000, word: 'hour' }],
  [['d', 'day', 'days'], { ms: 86_400_000, word: 'day' }],
  [['w', 'wk', 'wks', 'week', 'weeks'], { ms: 604_800_000, word: 'week' }],
  [['mo', 'mos', 'mon', 'month', 'months'], { months: 1, word: 'month' }],
  [['y', 'yr', 'yrs', 'year', 'years'], { months: 12, word: 'year' }],
] as const) {
  for (const spelling of spellings) UNITS[spelling] = unit as Unit;
}

const ISO_DATE = /^\d{4}-\d{2}-\d{2}(?:[T ]\d{2}:\d{2}(?::\d{2}(?:\.\d+)?)?(?:Z|[+-]\d{2}:?\d{2})?)?$/i;

function refuse(what: string, text: string, why: string): never {
  throw new GatewayError('PG_INVALID_INPUT', `invalid ${what} "${text}": ${why}`);
}

/**
 * `90d`, `2 weeks`, `6mo`, `1y`, `30min` (from `now`), a date `2027-01-31` (midnight UTC) or a time
 * `2027-01-31T18:00Z`, or `never`. Units must be unambiguous: `1m` is refused (minute or month?), months and
 * years are calendar ones. Nothing else is guessed at (a bare number is not a date).
 */
export function parseExpiry(text: string, now: number, what = 'expiry'): ParsedExpiry {
  const trimmed = text.trim();
  const fail: (why: string) => never = (why) => refuse(what, text, why);
  if (/^(never|none)$/i.test(trimmed)) return { at: null, understood: 'never' };
  const relative = /^(\d+)\s*([a-z]+)$/i.exec(trimmed);
  if (relative) {
    const amount = Number(relative[1]);
    const spelled = relative[2]!.toLowerCase();
    if (spelled === 'm') fail(`"m" could be minutes or months: write ${amount}min or ${amount}mo`);
    const unit = UNITS[spelled];
    if (!unit) fail('use a number and a unit (min, h, d, w, mo, y), e.g. 90d or 6mo, or a date such as 2027-01-31');
    if (amount <= 0) fail('must be in the future');
    let at: number;
    if (unit.months !== undefined) {
      const date = new Date(now);
      date.setUTCMonth(date.getUTCMonth() + amount * unit.months);
      at = date.getTime();
    } else {
      at = now + amount * unit.ms;
    }
    return { at, understood: `${amount} ${unit.word}${amount === 1 ? '' : 's'} from now` };
  }
  if (ISO_DATE.test(trimmed)) {
    const at = Date.parse(trimmed.replace(' ', 'T'));
    if (Number.isNaN(at)) fail('not a real date');
    if (at <= now) fail('must be in the future');
    return { at, understood: `${new Date(at).toISOString().replace('T', ' ').slice(0, 16)} UTC` };
  }
  return fail('use a duration (90d, 6mo, 1y, 30min), a date (2027-01-31) or never');
}
