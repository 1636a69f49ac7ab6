import { pino, type Logger, type DestinationStream } from 'pino';
import { redactSecrets } from './secret-redaction.js';

export type { Logger };

/**
 * The one logger: JSON lines, ISO times. Every object logged goes through redactSecrets first, so a secret-named
 * field is `[redacted]` at any depth (pino's own `redact` paths name fixed depths only). Errors are turned into
 * plain objects there, so pino's error serializer is the identity. passgate makes no child loggers (pino would
 * not pass a child's bindings through these formatters).
 */
export function createLogger(level: string, destination?: DestinationStream): Logger {
  return pino(
    {
      name: 'passgate',
      level,
      base: { pid: process.pid },
      timestamp: pino.stdTimeFunctions.isoTime,
      serializers: { err: (err: unknown) => err },
      formatters: {
        level: (label) => ({ level: label }),
        bindings: (bindings) => redactSecrets(bindings),
        log: (object) => redactSecrets(object),
      },
    },
    destination,
  );
}
