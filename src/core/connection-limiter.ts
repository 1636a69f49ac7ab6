import { limitingAddress, type NetworkList } from './network-list.js';

/** Why a connection was refused: the protocol's total is reached, or the client address's share of it. */
export type ConnectionRefusal = 'total' | 'per-ip';

export type Admission = { ok: true; release: () => void } | { ok: false; reason: ConnectionRefusal };

export interface ConnectionLimits {
  /** Connections open at once, all clients together (`<protocol>.max_connections`). */
  maxTotal: number;
  /** Connections open at once from one address, an IPv6 address counted by its /64 (`max_connections_per_ip`). */
  maxPerIp: number;
  /** Addresses without a per-address cap (`rate_limit.trusted_networks`: an office behind one NAT address). */
  exempt: NetworkList;
}

/**
 * Counts the open connections of one protocol in this process, by client address, and says whether one more may
 * start. Pure bookkeeping: the listener asks with the real client address (after the PROXY header) and calls
 * `release` when the connection closes. Memory is one map entry per address with a connection open now.
 *
 * The per-address cap is what keeps one flooding host from starving the others (the total cap alone would let it
 * take every slot); the total cap bounds sockets, buffers and descriptors whatever the number of addresses.
 */
export class ConnectionLimiter {
  private readonly perAddress = new Map<string, number>();
  private open = 0;

  constructor(private readonly limits: ConnectionLimits) {}

  /** Takes a slot for `ip`, or says which cap is full. `release` is idempotent. */
  acquire(ip: string): Admission {
    if (this.open >= this.limits.maxTotal) return { ok: false, reason: 'total' };
    const exempt = this.limits.exempt.contains(ip);
    const key = limitingAddress(ip);
    const current = this.perAddress.get(key) ?? 0;
    if (!exempt && current >= this.limits.maxPerIp) return { ok: false, reason: 'per-ip' };
    this.open++;
    this.perAddress.set(key, current + 1);
    let released = false;
    return {
      ok: true,
      release: () => {
        if (released) return;
        released = true;
        this.open--;
        const left = (this.perAddress.get(key) ?? 1) - 1;
        if (left > 0) this.perAddress.set(key, left);
        else this.perAddress.delete(key);
      },
    };
  }

  /** Connections open now, all addresses together. */
  get active(): number {
    return this.open;
  }

  /** Connections open now from `ip`'s limiting address. */
  activeFor(ip: string): number {
    return this.perAddress.get(limitingAddress(ip)) ?? 0;
  }

  /** Addresses with at least one connection open (the map's size: the limiter's memory). */
  get addresses(): number {
    return this.perAddress.size;
  }
}
