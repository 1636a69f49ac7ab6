import type { Protocol } from './protocol.js';
import type { ConnectionRefusal } from './connection-limiter.js';

/** Port: what the listeners count about connections. observability/metrics.ts implements it. */
export interface ConnectionMetrics {
  refused(protocol: Protocol, reason: ConnectionRefusal): void;
}
