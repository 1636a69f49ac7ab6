/**
 * Every field that can carry a secret is redacted where logs are produced, at any depth and in any letter case:
 * passwords, app passwords, tokens, client secrets, the pepper, authorization headers, hashes.
 */
export const REDACTED_KEYS = [
  'password',
  'pass',
  'appPassword',
  'token',
  'accessToken',
  'access_token',
  'refreshToken',
  'refresh_token',
  'idToken',
  'id_token',
  'clientSecret',
  'client_secret',
  'secret',
  'pepper',
  'authorization',
  'cookie',
  'hash',
];

export const REDACTED = '[redacted]';
const SECRET_KEYS = new Set(REDACTED_KEYS.map((key) => key.toLowerCase()));
/** Deeper than any object passgate logs; what lies below is not printed at all, so nothing can leak from it. */
const MAX_DEPTH = 10;

function isPlainObject(value: object): value is Record<string, unknown> {
  const proto = Object.getPrototypeOf(value) as unknown;
  return proto === Object.prototype || proto === null;
}

/**
 * A copy of `value` with every secret-named field replaced by `[redacted]`, walking plain objects, arrays and
 * errors (an error becomes its type, message, stack, cause and own fields, as pino prints them). Objects of
 * other classes (Buffer, Date, URL) are printed by their own toJSON and left alone. Cycles print `[circular]`.
 */
export function redactSecrets<T>(value: T): T {
  return walk(value, 0, new WeakSet()) as T;
}

function walk(value: unknown, depth: number, seen: WeakSet<object>): unknown {
  if (value === null || typeof value !== 'object') return value;
  if (seen.has(value)) return '[circular]';
  if (depth >= MAX_DEPTH) return '[too deep]';
  let source: object = value;
  if (value instanceof Error) source = errorFields(value);
  else if (!Array.isArray(value) && !isPlainObject(value)) return value;
  seen.add(value);
  try {
    if (Array.isArray(source)) return source.map((item) => walk(item, depth + 1, seen));
    const copy: Record<string, unknown> = {};
    for (const [key, field] of Object.entries(source)) {
      copy[key] = SECRET_KEYS.has(key.toLowerCase()) && field !== undefined && field !== null ? REDACTED : walk(field, depth + 1, seen);
    }
    return copy;
  } finally {
    seen.delete(value);
  }
}

function errorFields(error: Error): Record<string, unknown> {
  const fields: Record<string, unknown> = { type: error.constructor.name, message: error.message, stack: error.stack };
  if (error.cause !== undefined) fields['cause'] = error.cause;
  for (const [key, field] of Object.entries(error)) if (!(key in fields)) fields[key] = field;
  return fields;
}
