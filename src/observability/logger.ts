import { pino, type Logger, type DestinationStream } from 'pino';

export type { Logger };

/**
 * Every field that can carry a secret is redacted where logs are produced, whatever the nesting:
 * passwords, app passwords, tokens, client secrets, the pepper, authorization headers.
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
  'clientSecret',
  'client_secret',
  'secret',
  'pepper',
  'authorization',
  'hash',
];

export function createLogger(level: string, destination?: DestinationStream): Logger {
  const paths = REDACTED_KEYS.flatMap((key) => [key, `*.${key}`, `*.*.${key}`]);
  return pino(
    {
      name: 'passgate',
      level,
      redact: { paths, censor: '[redacted]' },
      base: { pid: process.pid },
      timestamp: pino.stdTimeFunctions.isoTime,
      formatters: { level: (label) => ({ level: label }) },
    },
    destination,
  );
}
