/**
 * Who asks for a change, so the CLI and the portal get the same rules from admin/ (AppPasswordAdmin and friends):
 * - `operator`: the CLI at the console; may do everything. Its id is what the audit log and `createdBy` say
 *   (`cli:<unix user>`, as before actors existed; `CLI_ACTOR` is `cli:root`).
 * - `admin`: a portal admin (signed in, and the provider says they are an admin); may do everything but set no
 *   password for themselves they could not also set for anyone.
 * - `user`: a portal user; id is their account's lower-case mail address, `mailboxes` the mailboxes they may
 *   create passwords for (their own first, then those the config grants them). Sees and changes only their own.
 * `ip` and `userAgent` are recorded with every change (null for the CLI).
 */
export interface Actor {
  role: 'operator' | 'admin' | 'user';
  id: string;
  mailboxes: string[];
  ip: string | null;
  userAgent: string | null;
}

export type ActorRole = Actor['role'];

/** The console operator (`passgate` CLI). */
export const CLI_ACTOR: Actor = Object.freeze({ role: 'operator', id: 'cli:root', mailboxes: [], ip: null, userAgent: null }) as Actor;

/** The console operator under its Unix user name, as the CLI records it (`cli:alice`). */
export function operatorActor(id: string): Actor {
  return { ...CLI_ACTOR, id };
}

/** Admins and the operator act on everyone's passwords; a user only on their own. */
export function actsForEveryone(actor: Actor): boolean {
  return actor.role === 'operator' || actor.role === 'admin';
}

/**
 * How the audit log's detail names an actor: `by cli:alice` for the operator (as the CLI always wrote it),
 * `by a@example.com (admin), agent "<user agent>"` for the portal. The address goes into the event's clientIp.
 */
export function describeActor(actor: Actor): string {
  if (actor.role === 'operator') return `by ${actor.id}`;
  const agent = actor.userAgent === null ? '' : `, agent "${actor.userAgent.replace(/[\p{Cc}"]/gu, ' ').slice(0, 200)}"`;
  return `by ${actor.id} (${actor.role})${agent}`;
}
