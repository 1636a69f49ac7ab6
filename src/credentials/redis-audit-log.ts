import { matchesAuditQuery, type AuditEvent, type AuditLog, type AuditQuery } from '../core/audit-log.js';
import type { Clock } from '../core/clock.js';
import { GatewayError } from '../core/gateway-error.js';
import type { RedisClient } from '../redis/redis-client-factory.js';

const BATCH = 500;

const PRUNE_EVERY = 1000;

/**
 * The shared sign-in log: one Redis stream (`P audit`), capped by length on every append (XADD MAXLEN ~, so
 * a flood cannot exhaust a `noeviction` Redis) and trimmed by age every thousand appends (XTRIM MINID, exact).
 * Queries never return what is past retention, trimmed or not.
 */
export class RedisAuditLog implements AuditLog {
  private readonly key: string;
  private appendsSincePrune = 0;

  constructor(
    private readonly redis: RedisClient,
    prefix: string,
    private readonly retentionMs: number,
    private readonly clock: Clock,
    private readonly maxEntries = 1_000_000,
  ) {
    this.key = `${prefix}audit`;
  }

  private cutoff(): string {
    return `${Math.max(0, this.clock() - this.retentionMs)}-0`;
  }

  async append(event: AuditEvent): Promise<void> {
    try {
      await this.redis.xadd(this.key, 'MAXLEN', '~', this.maxEntries, '*', 'e', JSON.stringify(event));
      if (++this.appendsSincePrune >= PRUNE_EVERY) await this.prune();
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
          if (!matchesAuditQuery(event, q)) continue;
          out.push(event);
          if (out.length >= q.limit) break;
        }
        if (entries.length < BATCH) break;
        end = `(${entries[entries.length - 1]![0]}`;
      }
    } catch (cause) {
      throw new GatewayError('PG_STORE_UNAVAILABLE', `redis audit log: query failed: ${(cause as Error).message}`, { cause });
    }
    // Stream ids are the time of writing: a record held through an outage (BufferedAuditLog) is written later
    // than its `at`. Newest first means by `at` (the page is still the last `limit` records written).
    return out.sort((a, b) => b.at - a.at);
  }

  async prune(): Promise<number> {
    this.appendsSincePrune = 0;
    // Exact, not `~`: an approximate trim removes only whole stream nodes (about 100 entries), so a small log would
    // keep its expired records for ever. prune runs every thousand appends, so the cost is bounded.
    return (await this.redis.xtrim(this.key, 'MINID', this.cutoff())) as number;
  }

  async close(): Promise<void> {}
}

