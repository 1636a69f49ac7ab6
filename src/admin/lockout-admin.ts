import { actsForEveryone, describeActor, type Actor } from '../core/actor.js';
import type { AuditLog } from '../core/audit-log.js';
import type { Clock } from '../core/clock.js';
import type { EventLogger } from '../core/event-logger.js';
import { GatewayError } from '../core/gateway-error.js';
import { LOCKOUT_KINDS, parseLockoutKey, type Lockout, type LockoutControl, type LockoutKind } from '../core/lockout-list.js';

/** Admins and the operator only: the users and addresses the brute-force limits have locked out, and unlocking. */
export class LockoutAdmin {
  constructor(
    private readonly deps: { limiter: LockoutControl; audit: AuditLog; clock: Clock; log: EventLogger },
  ) {}

  async list(actor: Actor): Promise<Lockout[]> {
    requireAdmin(actor);
    return this.deps.limiter.lockouts(this.deps.clock());
  }

  /** Lifts one lockout (on every instance with Redis) and audits it. False when it was not (or no longer) listed. */
  async unlock(actor: Actor, kind: LockoutKind, key: string): Promise<boolean> {
    requireAdmin(actor);
    if (!LOCKOUT_KINDS.includes(kind)) throw new GatewayError('PG_INVALID_INPUT', `unknown lockout kind "${kind}": use ${LOCKOUT_KINDS.join(', ')}`);
    const parsed = parseLockoutKey(kind, key);
    if (parsed === null) throw new GatewayError('PG_INVALID_INPUT', `invalid ${kind} lockout "${key}"`);
    const listed = await this.deps.limiter.unlock(kind, key);
    const event = {
      at: this.deps.clock(),
      action: 'lockout.unlock' as const,
      protocol: null,
      username: parsed.username ?? '(address)',
      clientIp: actor.ip,
      appPasswordId: null,
      appPasswordName: null,
      reason: 'ok' as const,
      detail: `${describeActor(actor)}: unlocked ${kind} ${key.trim()}${listed ? '' : ' (was not listed)'}`,
    };
    try {
      await this.deps.audit.append(event);
    } catch (error) {
      this.deps.log.error({ ...event, cause: (error as Error).message }, 'audit append failed');
    }
    return listed;
  }
}

export function requireAdmin(actor: Actor): void {
  if (!actsForEveryone(actor)) throw new GatewayError('PG_FORBIDDEN', 'this is for admins only');
}
