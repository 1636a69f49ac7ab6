import { statusOf, type AppPasswordView } from '../core/app-password-record.js';
import { formatAge, formatTime } from './cli-format.js';
import { GatewayError } from '../core/gateway-error.js';
import { isProtocol, PROTOCOLS, type Protocol } from '../core/protocol.js';
import type { MessagePolicyInput } from '../admin/app-password-input.js';

/** The command-line forms of an app password's settings, shared by `create` and `edit`. */
export function parseScopes(text: string): Protocol[] {
  const scopes = text.split(',').map((s) => s.trim().toLowerCase()).filter(Boolean);
  for (const scope of scopes) {
    if (!isProtocol(scope)) throw new GatewayError('PG_INVALID_INPUT', `unknown scope "${scope}": use ${PROTOCOLS.join(', ')}`);
  }
  return scopes as Protocol[];
}

/** `10MB`, `512KB`, `1GB` or plain bytes (powers of 1024, as mail size limits are usually stated). */
export function parseSize(text: string): number {
  const match = /^\s*(\d+)\s*([KMG]?)B?\s*$/i.exec(text);
  if (!match) throw new GatewayError('PG_INVALID_INPUT', `invalid size "${text}": use bytes or a unit, e.g. 500KB, 10MB`);
  return Number(match[1]) * 1024 ** ' KMG'.indexOf((match[2] || ' ').toUpperCase());
}

export function whole(text: string | undefined, option: string): number | undefined {
  if (text === undefined) return undefined;
  const n = Number(text);
  if (!Number.isInteger(n) || n <= 0) throw new GatewayError('PG_INVALID_INPUT', `invalid ${option} "${text}": expected a whole number above zero`);
  return n;
}

export interface PolicyOptions {
  allowSender?: string[];
  allowRecipientDomain?: string[];
  maxMessageSize?: string;
  maxMessagesPerHour?: string;
  maxMessagesPerDay?: string;
  checkFromHeader?: string;
}

const isNone = (text: string | undefined) => text !== undefined && /^\s*none\s*$/i.test(text);
const isNoneList = (list: string[] | undefined) => list !== undefined && list.length === 1 && isNone(list[0]);

/**
 * The mail-policy options; `none` clears one (edit: `--max-message-size none`, `--allow-sender none`). A field
 * whose option is absent is left out (create: no limit; edit: unchanged).
 */
export function policyInput(opts: PolicyOptions): MessagePolicyInput {
  const input: MessagePolicyInput = {};
  if (opts.allowSender !== undefined) input.allowedSenders = isNoneList(opts.allowSender) ? [] : opts.allowSender;
  if (opts.allowRecipientDomain !== undefined) input.allowedRecipientDomains = isNoneList(opts.allowRecipientDomain) ? [] : opts.allowRecipientDomain;
  if (opts.maxMessageSize !== undefined) input.maxMessageBytes = isNone(opts.maxMessageSize) ? null : parseSize(opts.maxMessageSize);
  if (opts.maxMessagesPerHour !== undefined) {
    input.maxMessagesPerHour = isNone(opts.maxMessagesPerHour) ? null : whole(opts.maxMessagesPerHour, '--max-messages-per-hour')!;
  }
  if (opts.maxMessagesPerDay !== undefined) {
    input.maxMessagesPerDay = isNone(opts.maxMessagesPerDay) ? null : whole(opts.maxMessagesPerDay, '--max-messages-per-day')!;
  }
  if (opts.checkFromHeader !== undefined) input.checkFromHeader = parseFromHeaderCheck(opts.checkFromHeader);
  return input;
}

/** `--check-from-header on|off|default`: the From header must be the mailbox or an allowed sender (issue 17). */
export function parseFromHeaderCheck(text: string): boolean | null {
  const value = text.trim().toLowerCase();
  if (value === 'on') return true;
  if (value === 'off') return false;
  if (value === 'default') return null;
  throw new GatewayError('PG_INVALID_INPUT', `invalid --check-from-header "${text}": use on, off or default (smtp.check_from_header)`);
}

export function describePolicy(view: AppPasswordView): string {
  const p = view.policy;
  const parts = [
    `senders: ${[view.mailbox, ...p.allowedSenders].join(', ')}`,
    `recipients: ${p.allowedRecipientDomains.length ? p.allowedRecipientDomains.join(', ') : 'any domain'}`,
    ...(p.maxMessageBytes !== null ? [`max size: ${p.maxMessageBytes} bytes`] : []),
    ...(p.maxMessagesPerHour !== null ? [`${p.maxMessagesPerHour}/hour`] : []),
    ...(p.maxMessagesPerDay !== null ? [`${p.maxMessagesPerDay}/day`] : []),
    `From header: ${p.checkFromHeader === null ? 'as smtp.check_from_header' : p.checkFromHeader ? 'checked' : 'not checked'}`,
  ];
  return parts.join('; ');
}

/** One app password as `show` prints it. */
export function describe(view: AppPasswordView, now: number): string[] {
  const used = view.lastUsedAt === null ? 'never' : `${formatAge(view.lastUsedAt, now)} from ${view.lastUsedIp} over ${view.lastUsedProtocol}`;
  return [
    `id:            ${view.id}`,
    `user:          ${view.username}`,
    `mailbox:       ${view.mailbox}`,
    `name:          ${view.name}`,
    `status:        ${statusOf(view, now)}`,
    `scopes:        ${view.scopes.join(', ')}`,
    `allowed from:  ${view.allowedNetworks.length ? view.allowedNetworks.join(', ') : 'any network'}`,
    `expires:       ${view.expiresAt === null ? 'never' : formatTime(view.expiresAt)}`,
    `created:       ${formatTime(view.createdAt)} by ${view.createdBy}`,
    `last used:     ${used}`,
    `uses:          ${view.useCount}`,
    `mail policy:   ${describePolicy(view)}`,
    ...(view.disabledAt !== null ? [`turned off:    ${formatTime(view.disabledAt)}`] : []),
    ...(view.revokedAt !== null ? [`revoked:       ${formatTime(view.revokedAt)}`] : []),
  ];
}
