/** Port: structured event logging (pino satisfies it). Messages are constant; details go in the object. */
export interface EventLogger {
  info(details: object, message: string): void;
  warn(details: object, message: string): void;
  error(details: object, message: string): void;
}

export const silentEventLogger: EventLogger = { info() {}, warn() {}, error() {} };
