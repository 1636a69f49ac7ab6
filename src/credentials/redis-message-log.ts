import type { Clock } from '../core/clock.js';
import { GatewayError } from '../core/gateway-error.js';
import { matchesMessageQuery, type MessageLog, type MessageQuery, type MessageRecord } from '../core/message-log.js';
import type { RedisClient } from '../redis/redis-client-factory.js';

const BATCH = 500;

const PRUNE_EVERY = 1000;

/**
 * The shared message trace: one Redis stream (`P messages`), bounded as the sign-in log's stream is: capped by
 * length on every append (XADD MAXLEN ~), trimmed by age every thousand appends (XTRIM MINID, exact); queries never
 * return what is past retention.
 */
export class RedisMessageLog implements MessageLog {
  private readonly key: string;
  private appendsSincePrune = 0;

  constructor(
    private readonly redis: RedisClient,
    prefix: string,
    private readonly retentionMs: number,
    private readonly clock: Clock,
    private readonly maxEntries = 1_000_000,
  ) {
    this.key = `${prefix}messages`;
  }

  async append(record: MessageRecord): Promise<void> {
    try {
      await this.redis.xadd(this.key, 'MAXLEN', '~', this.maxEntries, '*', 'm', JSON.stringify(record));
      if (++this.appendsSincePrune >= PRUNE_EVERY) await this.prune();
    } catch (cause) {
      throw new GatewayError('PG_STORE_UNAVAILABLE', `redis message trace: append failed: ${(cause as Error).message}`, { cause });
    }
  }

  async query(q: MessageQuery): Promise<MessageRecord[]> {
    const floor = Math.max(q.since ?? 0, this.clock() - this.retentionMs);
    const out: MessageRecord[] = [];
    // Stream ids are the time of writing, the record's `at` that of its outcome (another instance's clock): both
    // bounds are applied to `at`, the scan's lower bound only to the id (a record is never written before its time).
    let end = '+';
    try {
      while (out.length < q.limit) {
        const entries = await this.redis.xrevrange(this.key, end, `${floor}-0`, 'COUNT', BATCH);
        for (const [, fields] of entries) {
          const record = JSON.parse(fields[1] ?? '{}') as MessageRecord;
          if (record.at < floor || (q.until !== undefined && record.at >= q.until) || !matchesMessageQuery(record, q)) continue;
          out.push(record);
          if (out.length >= q.limit) break;
        }
        if (entries.length < BATCH) break;
        end = `(${entries[entries.length - 1]![0]}`;
      }
    } catch (cause) {
      throw new GatewayError('PG_STORE_UNAVAILABLE', `redis message trace: query failed: ${(cause as Error).message}`, { cause });
    }
    return out.sort((a, b) => b.at - a.at);
  }

  async prune(): Promise<number> {
    this.appendsSincePrune = 0;
    // Exact, as the sign-in log's: an approximate trim keeps whole stream nodes of expired records.
    return (await this.redis.xtrim(this.key, 'MINID', `${Math.max(0, this.clock() - this.retentionMs)}-0`)) as number;
  }

  async close(): Promise<void> {}
}
