import { isValidUsername, NO_MESSAGE_LIMITS, normalizeUsername, type MessagePolicy } from '../core/app-password-record.js';
import { GatewayError } from '../core/gateway-error.js';
import { parseCidr } from '../core/network-list.js';
import { PROTOCOLS, type Protocol } from '../core/protocol.js';

/** A message policy as given: every field optional (absent: no limit, or unchanged on edit). */
export type MessagePolicyInput = { [K in keyof MessagePolicy]?: MessagePolicy[K] | null | undefined };

export function invalid(message: string): never {
  throw new GatewayError('PG_INVALID_INPUT', message);
}

/** The checks of what a person types when creating or editing an app password, shared by create and edit. */
export function checkAddress(raw: string, what: 'user' | 'mailbox'): string {
  const address = normalizeUsername(raw);
  if (!isValidUsername(address)) invalid(`invalid ${what} "${raw}": expected a mail address without spaces`);
  return address;
}

export function checkName(raw: string): string {
  const name = raw.trim();
  if (name.length === 0 || name.length > 200) invalid('the name must be 1 to 200 characters, e.g. "Scanner, 3rd floor"');
  return name;
}

export function checkScopes(raw: readonly Protocol[] | undefined): Protocol[] {
  const scopes = [...new Set(raw ?? PROTOCOLS)];
  if (scopes.length === 0) invalid(`at least one scope is needed: ${PROTOCOLS.join(', ')}`);
  return scopes;
}

export function checkNetworks(raw: readonly string[]): string[] {
  return raw.map((cidr) => {
    if (!parseCidr(cidr)) invalid(`invalid network "${cidr}": expected an address or CIDR such as 192.168.1.0/24`);
    return cidr.trim();
  });
}

export function checkExpiry(expiresAt: number | null, now: number): number | null {
  if (expiresAt !== null && (!Number.isFinite(expiresAt) || expiresAt <= now)) invalid('the expiry must be in the future');
  return expiresAt;
}

/** True when the input sets anything of a policy (a user may not). */
export function setsPolicy(input: MessagePolicyInput | undefined): boolean {
  if (input === undefined) return false;
  return Object.values(input).some((v) => v !== undefined && v !== null && !(Array.isArray(v) && v.length === 0));
}

function fromHeaderChoice(value: unknown): boolean | null {
  if (value === null || typeof value === 'boolean') return value;
  return invalid(`invalid From header check "${String(value)}": expected true, false or null (the default)`);
}

/** `input` over `base` (a field left out keeps base's value), checked. */
export function checkPolicy(input: MessagePolicyInput, base: MessagePolicy = NO_MESSAGE_LIMITS): MessagePolicy {
  const pick = <K extends keyof MessagePolicy>(key: K): MessagePolicy[K] | null => (input[key] === undefined ? base[key] : (input[key] as MessagePolicy[K] | null));
  const allowedSenders = (pick('allowedSenders') ?? []).map((s) => {
    const address = normalizeUsername(s);
    if (!isValidUsername(address) || !address.includes('@')) invalid(`invalid sender "${s}": expected a mail address`);
    return address;
  });
  const allowedRecipientDomains = (pick('allowedRecipientDomains') ?? []).map((d) => {
    const domain = d.trim().toLowerCase().replace(/^@/, '');
    if (!/^[a-z0-9.-]+\.[a-z0-9-]+$/.test(domain)) invalid(`invalid recipient domain "${d}": expected a domain such as example.com`);
    return domain;
  });
  const positive = (value: number | null, what: string) => {
    if (value === null) return null;
    if (!Number.isInteger(value) || value <= 0) invalid(`invalid ${what} "${value}": expected a whole number above zero`);
    return value;
  };
  return {
    allowedSenders,
    allowedRecipientDomains,
    maxMessageBytes: positive(pick('maxMessageBytes'), 'maximum message size'),
    maxMessagesPerHour: positive(pick('maxMessagesPerHour'), 'messages per hour'),
    maxMessagesPerDay: positive(pick('maxMessagesPerDay'), 'messages per day'),
    checkFromHeader: fromHeaderChoice(pick('checkFromHeader')),
  };
}
