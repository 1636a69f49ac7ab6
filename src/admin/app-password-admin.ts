import { randomBytes } from 'node:crypto';
import { actsForEveryone, describeActor, type Actor } from '../core/actor.js';
import type { AppPasswordPatch } from '../core/app-password-patch.js';
import { normalizeUsername, statusOf, toView, type AppPasswordRecord, type AppPasswordStatus, type AppPasswordView } from '../core/app-password-record.js';
import type { AppPasswordFormat } from '../core/app-password-format.js';
import type { AuditAction, AuditLog } from '../core/audit-log.js';
import type { Clock } from '../core/clock.js';
import type { EventLogger } from '../core/event-logger.js';
import type { CredentialSelector } from '../core/credential-selector.js';
import type { CredentialStore } from '../core/credential-store.js';
import { GatewayError } from '../core/gateway-error.js';
import type { PasswordHasher } from '../core/password-hasher.js';
import type { Protocol } from '../core/protocol.js';
import { buildSetupSheet, type SetupSheet, type SetupTarget } from '../core/setup-sheet.js';
import {
  checkAddress,
  checkExpiry,
  checkName,
  checkNetworks,
  checkPolicy,
  checkScopes,
  invalid,
  setsPolicy,
  type MessagePolicyInput,
} from './app-password-input.js';

export interface CreateAppPasswordInput {
  /** Whose password it is; a portal user may leave it out (their own) and may give no other. */
  username?: string | undefined;
  name: string;
  /** The upstream mailbox; a portal user's default is their first mailbox, and only theirs are allowed. */
  mailbox?: string | undefined;
  scopes?: Protocol[] | undefined;
  allowedNetworks?: string[] | undefined;
  expiresAt?: number | null | undefined;
  length?: number | undefined;
  /** Admins and the operator only. */
  policy?: MessagePolicyInput | undefined;
}

export interface EditAppPasswordInput {
  name?: string | undefined;
  expiresAt?: number | null | undefined;
  allowedNetworks?: string[] | undefined;
  /** Admins and the operator only; fields left out keep their value. */
  policy?: MessagePolicyInput | undefined;
}

export interface CreatedAppPassword {
  view: AppPasswordView;
  /** The password in grouped form; shown once, never stored, never logged or audited. */
  password: string;
  setup: SetupSheet;
}

export interface AppPasswordListFilter {
  username?: string | undefined;
  /** Case-insensitive text in the id, name, username or mailbox. */
  search?: string | undefined;
  status?: AppPasswordStatus | undefined;
}

export interface AppPasswordAdminDeps {
  store: CredentialStore;
  audit: AuditLog;
  hasher: PasswordHasher;
  selector: CredentialSelector;
  format: AppPasswordFormat;
  clock: Clock;
  maxPerUser: number;
  log: EventLogger;
  /** This passgate's listeners and certificate, read when a password is created (the setup sheet). */
  setupTarget: () => SetupTarget;
}

const ID_ALPHABET = 'abcdefghijklmnopqrstuvwxyz234567';
const SELECTOR_RETRIES = 5;

function newId(): string {
  let id = 'ap_';
  for (const byte of randomBytes(16)) id += ID_ALPHABET[byte & 31];
  return id;
}

function forbidden(message: string): never {
  throw new GatewayError('PG_FORBIDDEN', message);
}

/**
 * The app-password use-cases with their rules of who may do what, shared by the CLI (the operator) and the portal
 * (a user or an admin); the edges decide nothing of this themselves. A user sees and changes only their own
 * passwords (another's id is answered exactly like an unknown one), creates only for their own mailboxes, and sets
 * no message policy; an admin and the operator may do everything. Every change is audited with the actor.
 */
export class AppPasswordAdmin {
  constructor(private readonly deps: AppPasswordAdminDeps) {}

  async create(actor: Actor, input: CreateAppPasswordInput): Promise<CreatedAppPassword> {
    const { store, hasher, selector, format, clock } = this.deps;
    const everyone = actsForEveryone(actor);
    if (!everyone && input.username === undefined) input = { ...input, username: actor.id };
    if (input.username === undefined) invalid('the user is required');
    const username = checkAddress(input.username, 'user');
    const mailboxes = actor.mailboxes.map(normalizeUsername);
    const mailbox = input.mailbox === undefined ? (everyone ? username : mailboxes[0]) : checkAddress(input.mailbox, 'mailbox');
    if (!everyone) {
      if (username !== actor.id) forbidden('you can create app passwords for yourself only');
      if (mailbox === undefined || !mailboxes.includes(mailbox)) forbidden(`you cannot create app passwords for the mailbox ${mailbox ?? '(none granted)'}`);
      if (setsPolicy(input.policy)) forbidden('only an admin can set what mail a password may send');
    }
    const name = checkName(input.name);
    const scopes = checkScopes(input.scopes);
    const allowedNetworks = checkNetworks(input.allowedNetworks ?? []);
    const policy = checkPolicy(input.policy ?? {});
    const now = clock();
    const expiresAt = checkExpiry(input.expiresAt ?? null, now);

    for (let attempt = 0; attempt < SELECTOR_RETRIES; attempt++) {
      let password: string;
      try {
        password = format.generate(input.length ?? format.length);
      } catch (error) {
        invalid(`invalid length: ${(error as Error).message}`);
      }
      const record: AppPasswordRecord = {
        id: newId(),
        username,
        mailbox: mailbox!,
        name,
        scopes,
        allowedNetworks,
        expiresAt,
        createdAt: now,
        createdBy: actor.id,
        lastUsedAt: null,
        lastUsedIp: null,
        lastUsedProtocol: null,
        useCount: 0,
        revokedAt: null,
        disabledAt: null,
        policy,
        selector: selector.derive(username, password),
        hash: await hasher.hash(password),
      };
      const result = await store.insert(record, { maxActivePerUser: this.deps.maxPerUser, now });
      if (result.ok) {
        await this.audit(actor, 'app-password.create', record, null);
        const view = toView(record);
        return { view, password: format.display(password), setup: buildSetupSheet(this.deps.setupTarget(), view) };
      }
      if (result.reason === 'limit-reached') {
        throw new GatewayError(
          'PG_LIMIT_REACHED',
          `${username} already holds ${this.deps.maxPerUser} active app passwords (app_passwords.max_per_user): revoke one first`,
        );
      }
      // selector-taken: a 1-in-2^24 collision with another of this user's passwords; draw a new password.
    }
    throw new GatewayError('PG_STORE_CONFLICT', 'could not draw a unique app password; try again');
  }

  /** The setup sheet of an existing password (the portal's printable view); no secret in it. */
  async setupSheet(actor: Actor, id: string): Promise<SetupSheet> {
    return buildSetupSheet(this.deps.setupTarget(), await this.show(actor, id));
  }

  /** Oldest first. A user gets only their own, whatever the filter says. */
  async list(actor: Actor, filter: AppPasswordListFilter = {}): Promise<AppPasswordView[]> {
    const username = !actsForEveryone(actor) ? actor.id : filter.username === undefined ? undefined : normalizeUsername(filter.username);
    const records = await this.deps.store.list(username === undefined ? {} : { username });
    const search = filter.search?.trim().toLowerCase();
    const now = this.deps.clock();
    return records
      .filter((r) => !search || [r.id, r.name, r.username, r.mailbox].some((text) => text.toLowerCase().includes(search)))
      .filter((r) => filter.status === undefined || statusOf(r, now) === filter.status)
      .map(toView);
  }

  async show(actor: Actor, id: string): Promise<AppPasswordView> {
    return toView(await this.find(actor, id));
  }

  /** Turns a password off: refused at login, live sessions cut (on every instance), reversible with turnOn. */
  async turnOff(actor: Actor, id: string): Promise<{ view: AppPasswordView; changed: boolean }> {
    const before = await this.find(actor, id);
    if (before.revokedAt !== null || before.disabledAt !== null) return { view: toView(before), changed: false };
    return this.change(actor, before, { disabledAt: this.deps.clock() }, 'app-password.turn-off', null);
  }

  /** Turns a password on again; the device needs nothing new. A revoked one cannot be. */
  async turnOn(actor: Actor, id: string): Promise<{ view: AppPasswordView; changed: boolean }> {
    const before = await this.find(actor, id);
    if (before.revokedAt !== null) invalid(`${before.id} is revoked, which is for good: create a new app password instead`);
    if (before.disabledAt === null) return { view: toView(before), changed: false };
    return this.change(actor, before, { disabledAt: null }, 'app-password.turn-on', null);
  }

  async revoke(actor: Actor, id: string): Promise<{ view: AppPasswordView; changed: boolean }> {
    const before = await this.find(actor, id);
    const record = (await this.deps.store.revoke(before.id, this.deps.clock())) ?? before;
    const changed = before.revokedAt === null;
    if (changed) await this.audit(actor, 'app-password.revoke', record, null);
    return { view: toView(record), changed };
  }

  /** The emergency stop for one user: every password not yet revoked. A user may do it for themselves only. */
  async revokeAll(actor: Actor, rawUsername: string): Promise<{ revoked: AppPasswordView[] }> {
    const username = normalizeUsername(rawUsername);
    if (!actsForEveryone(actor) && username !== actor.id) forbidden('you can revoke your own app passwords only');
    const revoked = await this.deps.store.revokeAll(username, this.deps.clock());
    await this.append(actor, 'app-password.revoke-all', username, null, `${revoked.length} revoked`);
    return { revoked: revoked.map(toView) };
  }

  /** Changes what a password may do without re-keying the device. A user may not change its message policy. */
  async edit(actor: Actor, id: string, input: EditAppPasswordInput): Promise<AppPasswordView> {
    const before = await this.find(actor, id);
    if (!actsForEveryone(actor) && setsPolicy(input.policy)) forbidden('only an admin can set what mail a password may send');
    if (before.revokedAt !== null) invalid(`${before.id} is revoked: it cannot be changed`);
    const patch: AppPasswordPatch = {};
    const now = this.deps.clock();
    if (input.name !== undefined) patch.name = checkName(input.name);
    if (input.expiresAt !== undefined) patch.expiresAt = checkExpiry(input.expiresAt, now);
    if (input.allowedNetworks !== undefined) patch.allowedNetworks = checkNetworks(input.allowedNetworks);
    if (input.policy !== undefined) patch.policy = checkPolicy(input.policy, before.policy);
    const fields = Object.keys(patch);
    if (fields.length === 0) invalid('nothing to change: give a name, an expiry, networks or a mail policy');
    if (patch.expiresAt !== undefined && before.expiresAt !== null && before.expiresAt <= now) await this.checkRoomFor(before);
    return (await this.change(actor, before, patch, 'app-password.edit', `changed ${fields.join(', ')}`)).view;
  }

  /** A password brought back from expiry takes a slot again: refused when the user holds the most already. */
  private async checkRoomFor(record: AppPasswordRecord): Promise<void> {
    const now = this.deps.clock();
    const active = (await this.deps.store.list({ username: record.username })).filter((r) => r.revokedAt === null && (r.expiresAt === null || r.expiresAt > now));
    if (active.length >= this.deps.maxPerUser) {
      throw new GatewayError('PG_LIMIT_REACHED', `${record.username} already holds ${this.deps.maxPerUser} active app passwords (app_passwords.max_per_user): revoke one first`);
    }
  }

  private async change(actor: Actor, before: AppPasswordRecord, patch: AppPasswordPatch, action: AuditAction, detail: string | null) {
    const result = await this.deps.store.update(before.id, patch);
    if (result === null) this.notFound(before.id);
    // Revoked meanwhile: the store changed nothing.
    if (result.after.revokedAt !== null) return { view: toView(result.after), changed: false };
    await this.audit(actor, action, result.after, detail);
    return { view: toView(result.after), changed: true };
  }

  /** The record, if the actor may see it: another user's id is answered exactly like an unknown one. */
  private async find(actor: Actor, rawId: string): Promise<AppPasswordRecord> {
    const id = rawId.trim();
    const record = await this.deps.store.get(id);
    if (record === null || (!actsForEveryone(actor) && record.username !== actor.id)) this.notFound(id);
    return record;
  }

  private notFound(id: string): never {
    throw new GatewayError('PG_NOT_FOUND', `no app password with id "${id}"`);
  }

  private audit(actor: Actor, action: AuditAction, record: AppPasswordRecord, detail: string | null) {
    return this.append(actor, action, record.username, record, detail);
  }

  /**
   * The change is made by now: a failed audit write must not hide its result (a created password would be lost
   * while taking a slot), so it is logged as an error instead of thrown.
   */
  private async append(actor: Actor, action: AuditAction, username: string, record: AppPasswordRecord | null, detail: string | null): Promise<void> {
    const event = {
      at: this.deps.clock(),
      action,
      protocol: null,
      username,
      clientIp: actor.ip,
      appPasswordId: record?.id ?? null,
      appPasswordName: record?.name ?? null,
      reason: 'ok' as const,
      detail: detail === null ? describeActor(actor) : `${describeActor(actor)}: ${detail}`,
    };
    try {
      await this.deps.audit.append(event);
    } catch (error) {
      this.deps.log.error({ ...event, cause: (error as Error).message }, 'audit append failed');
    }
  }
}
