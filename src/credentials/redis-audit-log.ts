import type { AuditEvent, AuditLog, AuditQuery } from '../core/audit-log.js';
import type { Clock } from '../core/clock.js';
import { GatewayError } from '../core/gateway-error.js';
import type { RedisClient } from './redis-client-factory.js';

const BATCH = 500;

/**
 * The shared sign-in log: one Redis stream (`P audit`), trimmed by time on every append
 * (XADD ... MINID ~ <now - retention>), so retention needs no background job.
 */
export class RedisAuditLog implements AuditLog {
  private readonly key: string;

  constructor(
    private readonly redis: RedisClient,
    prefix: string,
    private readonly retentionMs: number,
    private readonly clock: Clock,
  ) {
    this.key = `${prefix}audit`;
  }

  private cutoff(): string {
    return `${Math.max(0, this.clock() - this.retentionMs)}-0`;
  }

  async append(event: AuditEvent): Promise<void> {
    try {
      await this.redis.xadd(this.key, 'MINID', '~', this.cutoff(), '*', 'e', JSON.stringify(event));
    } catch (cause) {
      throw new GatewayError('PG_STORE_UNAVAILABLE', `redis audit log: append failed: ${(cause as Error).message}`, { cause });
    }
  }

  async query(q: AuditQuery): Promise<AuditEvent[]> {
    const floor = Math.max(q.since ?? 0, this.clock() - this.retentionMs);
    const out: AuditEvent[] = [];
    let end = '+';
    try {
      while (out.length < q.limit) {
        const entries = await this.redis.xrevrange(this.key, end, `${floor}-0`, 'COUNT', BATCH);
        for (const [, fields] of entries) {
          const event = JSON.parse(fields[1] ?? '{}') as AuditEvent;
          if (event.at < floor) continue;
          if (q.username !== undefined && event.username !== q.username) continue;
          out.push(event);
          if (out.length >= q.limit) break;
        }
        if (entries.length < BATCH) break;
        end = `(${entries[entries.length - 1]![0]}`;
      }
    } catch (cause) {
      throw new GatewayError('PG_STORE_UNAVAILABLE', `redis audit log: query failed: ${(cause as Error).message}`, { cause });
    }
    return out;
  }

  async prune(): Promise<number> {
    return (await this.redis.xtrim(this.key, 'MINID', this.cutoff())) as number;
  }

  async close(): Promise<void> {}
}
