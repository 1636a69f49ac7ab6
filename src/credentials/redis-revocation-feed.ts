import { Cluster } from 'ioredis';
import type { RevocationHints } from '../core/live-session-registry.js';
import type { RedisClient } from '../redis/redis-client-factory.js';

/** The Pub/Sub channel on which revocations are announced (prefix P): `P revoked`, message = JSON array of ids. */
export function revocationChannel(prefix: string): string {
  return `${prefix}revoked`;
}

/**
 * Announces revocations to every instance sharing the Redis. Classic PUBLISH reaches subscribers on every node of
 * a Redis Cluster (the cluster bus forwards it), so one channel serves standalone, Sentinel and Cluster alike.
 * Best effort by design: the revocation is already stored when this runs, and every instance also polls the store
 * (imap.revocation_check_seconds), so a lost message only delays the close to the next round.
 */
export async function announceRevocation(redis: RedisClient, prefix: string, ids: string[]): Promise<void> {
  if (ids.length === 0) return;
  await redis.publish(revocationChannel(prefix), JSON.stringify(ids)).catch(() => {});
}

/**
 * Hears revocations announced by any instance or CLI (`announceRevocation`). The subscription needs a connection
 * of its own (a subscribed connection runs no other command), duplicated from the shared client on first
 * `subscribe()`, so processes that never listen (the CLI) open none.
 */
export class RedisRevocationFeed implements RevocationHints {
  private subscriber: RedisClient | null = null;
  private subscribed: Promise<void> | null = null;
  private readonly listeners = new Set<(ids: string[]) => void>();

  constructor(
    private readonly redis: RedisClient,
    private readonly prefix: string,
    private readonly onError: (error: Error) => void = () => {},
  ) {}

  subscribe(listener: (ids: string[]) => void): () => void {
    this.listeners.add(listener);
    this.start();
    return () => void this.listeners.delete(listener);
  }

  /** Resolves once the first SUBSCRIBE was answered (or failed; it is sent again on every reconnect). */
  async ready(): Promise<void> {
    await this.subscribed;
  }

  private start(): void {
    if (this.subscriber) return;
    const channel = revocationChannel(this.prefix);
    const subscriber: RedisClient = this.redis instanceof Cluster ? this.redis.duplicate() : this.redis.duplicate();
    this.subscriber = subscriber;
    subscriber.on('error', (error: Error) => this.onError(error));
    subscriber.on('message', (from: string, message: string) => {
      if (from !== channel) return;
      const ids = parseIds(message);
      if (ids.length > 0) for (const listener of this.listeners) listener(ids);
    });
    // SUBSCRIBE on every "ready": a Cluster client refuses commands before it (no offline queue, see the factory),
    // and subscribing again to a channel already subscribed changes nothing.
    let settle: () => void = () => {};
    this.subscribed = new Promise<void>((resolve) => (settle = resolve));
    const subscribe = () =>
      subscriber.subscribe(channel).then(settle, (error: Error) => {
        this.onError(error);
        settle();
      });
    subscriber.on('ready', subscribe);
    if (subscriber.status === 'ready') void subscribe();
  }

  async close(): Promise<void> {
    this.listeners.clear();
    this.subscriber?.disconnect();
    this.subscriber = null;
  }
}

/** A message from the channel: a JSON array of id strings; anything else is ignored (the poll still runs). */
function parseIds(message: string): string[] {
  try {
    const value: unknown = JSON.parse(message);
    return Array.isArray(value) ? value.filter((id): id is string => typeof id === 'string') : [];
  } catch {
    return [];
  }
}
