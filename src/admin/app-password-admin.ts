import { randomBytes } from 'node:crypto';
import {
  isValidUsername,
  NO_MESSAGE_LIMITS,
  normalizeUsername,
  toView,
  type AppPasswordRecord,
  type AppPasswordView,
  type MessagePolicy,
} from '../core/app-password-record.js';
import type { AppPasswordFormat } from '../core/app-password-format.js';
import type { AuditEvent, AuditLog } from '../core/audit-log.js';
import type { Clock } from '../core/clock.js';
import type { EventLogger } from '../core/event-logger.js';
import type { CredentialSelector } from '../core/credential-selector.js';
import type { CredentialStore } from '../core/credential-store.js';
import { GatewayError } from '../core/gateway-error.js';
import { parseCidr } from '../core/network-list.js';
import type { PasswordHasher } from '../core/password-hasher.js';
import { PROTOCOLS, type Protocol } from '../core/protocol.js';

export interface CreateAppPasswordInput {
  username: string;
  name: string;
  mailbox?: string | undefined;
  scopes?: Protocol[] | undefined;
  allowedNetworks?: string[] | undefined;
  expiresAt?: number | null | undefined;
  createdBy: string;
  length?: number | undefined;
  policy?: { [K in keyof MessagePolicy]?: MessagePolicy[K] | undefined } | undefined;
}

export interface CreatedAppPassword {
  view: AppPasswordView;
  /** The password in grouped form; shown once, never stored. */
  password: string;
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
}

const ID_ALPHABET = 'abcdefghijklmnopqrstuvwxyz234567';
const SELECTOR_RETRIES = 5;

function newId(): string {
  const bytes = randomBytes(16);
  let id = 'ap_';
  for (const byte of bytes) id += ID_ALPHABET[byte & 31];
  return id;
}

function invalid(message: string): never {
  throw new GatewayError('PG_INVALID_INPUT', message);
}

/** The operator's use-cases for app passwords, shared by the CLI and (later) the admin HTTP API. */
export class AppPasswordAdmin {
  constructor(private readonly deps: AppPasswordAdminDeps) {}

  async create(input: CreateAppPasswordInput): Promise<CreatedAppPassword> {
    const { store, hasher, selector, format, clock } = this.deps;
    const username = normalizeUsername(input.username);
    if (!isValidUsername(username)) invalid(`invalid user "${input.username}": expected a mail address without spaces`);
    const mailbox = input.mailbox === undefined ? username : normalizeUsername(input.mailbox);
    if (!isValidUsername(mailbox)) invalid(`invalid mailbox "${input.mailbox}": expected a mail address without spaces`);
    const name = input.name.trim();
    if (name.length === 0 || name.length > 200) invalid('the name must be 1 to 200 characters, e.g. "Scanner, 3rd floor"');
    const scopes = [...new Set(input.scopes ?? PROTOCOLS)];
    if (scopes.length === 0) invalid(`at least one scope is needed: ${PROTOCOLS.join(', ')}`);
    const allowedNetworks = (input.allowedNetworks ?? []).map((cidr) => {
      if (!parseCidr(cidr)) invalid(`invalid network "${cidr}": expected an address or CIDR such as 192.168.1.0/24`);
      return cidr.trim();
    });
    const policy = this.checkPolicy(input.policy ?? {});
    const now = clock();
    const expiresAt = input.expiresAt ?? null;
    if (expiresAt !== null && expiresAt <= now) invalid('the expiry must be in the future');

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
        mailbox,
        name,
        scopes,
        allowedNetworks,
        expiresAt,
        createdAt: now,
        createdBy: input.createdBy,
        lastUsedAt: null,
        lastUsedIp: null,
        lastUsedProtocol: null,
        useCount: 0,
        revokedAt: null,
        policy,
        selector: selector.derive(username, password),
        hash: await hasher.hash(password),
      };
      const result = await store.insert(record, { maxActivePerUser: this.deps.maxPerUser, now });
      if (result.ok) {
        await this.audit('app-password.create', record, `by ${input.createdBy}`);
        return { view: toView(record), password: format.display(password) };
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

  private checkPolicy(input: NonNullable<CreateAppPasswordInput['policy']>): MessagePolicy {
    const allowedSenders = (input.allowedSenders ?? []).map((s) => {
      const address = normalizeUsername(s);
      if (!isValidUsername(address) || !address.includes('@')) invalid(`invalid sender "${s}": expected a mail address`);
      return address;
    });
    const allowedRecipientDomains = (input.allowedRecipientDomains ?? []).map((d) => {
      const domain = d.trim().toLowerCase().replace(/^@/, '');
      if (!/^[a-z0-9.-]+\.[a-z0-9-]+$/.test(domain)) invalid(`invalid recipient domain "${d}": expected a domain such as example.com`);
      return domain;
    });
    const positive = (value: number | null | undefined, what: string) => {
      if (value === null || value === undefined) return null;
      if (!Number.isInteger(value) || value <= 0) invalid(`invalid ${what} "${value}": expected a whole number above zero`);
      return value;
    };
    return {
      ...NO_MESSAGE_LIMITS,
      allowedSenders,
      allowedRecipientDomains,
      maxMessageBytes: positive(input.maxMessageBytes, 'maximum message size'),
      maxMessagesPerHour: positive(input.maxMessagesPerHour, 'messages per hour'),
      maxMessagesPerDay: positive(input.maxMessagesPerDay, 'messages per day'),
    };
  }

  async list(filter: { username?: string | undefined } = {}): Promise<AppPasswordView[]> {
    const username = filter.username === undefined ? undefined : normalizeUsername(filter.username);
    const records = await this.deps.store.list(username === undefined ? {} : { username });
    return records.map(toView);
  }

  async show(id: string): Promise<AppPasswordView> {
    const record = await this.deps.store.get(id.trim());
    if (!record) throw new GatewayError('PG_NOT_FOUND', `no app password with id "${id}" (see: passgate app-password list)`);
    return toView(record);
  }

  async revoke(id: string, by: string): Promise<AppPasswordView> {
    const before = await this.deps.store.get(id.trim());
    if (!before) throw new GatewayError('PG_NOT_FOUND', `no app password with id "${id}" (see: passgate app-password list)`);
    const record = (await this.deps.store.revoke(before.id, this.deps.clock()))!;
    if (before.revokedAt === null) await this.audit('app-password.revoke', record, `by ${by}`);
    return toView(record);
  }

  async revokeAll(rawUsername: string, by: string): Promise<AppPasswordView[]> {
    const username = normalizeUsername(rawUsername);
    const revoked = await this.deps.store.revokeAll(username, this.deps.clock());
    await this.append({
      at: this.deps.clock(),
      action: 'app-password.revoke-all',
      protocol: null,
      username,
      clientIp: null,
      appPasswordId: null,
      appPasswordName: null,
      reason: 'ok',
      detail: `by ${by}: ${revoked.length} revoked`,
    });
    return revoked.map(toView);
  }

  /**
   * The change is made by now: a failed audit write must not hide its result (a created password would be lost
   * while taking a slot), so it is logged as an error instead of thrown.
   */
  private async append(event: AuditEvent): Promise<void> {
    try {
      await this.deps.audit.append(event);
    } catch (error) {
      this.deps.log.error({ ...event, cause: (error as Error).message }, 'audit append failed');
    }
  }

  private audit(action: 'app-password.create' | 'app-password.revoke', record: AppPasswordRecord, detail: string) {
    return this.append({
      at: this.deps.clock(),
      action,
      protocol: null,
      username: record.username,
      clientIp: null,
      appPasswordId: record.id,
      appPasswordName: record.name,
      reason: 'ok',
      detail,
    });
  }
}
