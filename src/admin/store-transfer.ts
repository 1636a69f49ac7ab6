import { z } from 'zod';
import { isValidUsername, NO_MESSAGE_LIMITS, normalizeUsername, type AppPasswordRecord } from '../core/app-password-record.js';
import { parseCidr } from '../core/network-list.js';
import type { CredentialStore } from '../core/credential-store.js';
import { GatewayError } from '../core/gateway-error.js';
import { PROTOCOLS } from '../core/protocol.js';

/** One exported line: the whole record, hash included (never a password), so a move keeps every credential. */
const address = () =>
  z
    .string()
    .transform(normalizeUsername)
    .refine(isValidUsername, { message: 'expected a mail address without spaces' });

const recordSchema = z
  .object({
    id: z.string().regex(/^ap_[a-z2-7]{16}$/),
    username: address(),
    mailbox: address(),
    name: z.string().min(1),
    scopes: z.array(z.enum(PROTOCOLS)).min(1),
    allowedNetworks: z.array(z.string().refine((v) => parseCidr(v) !== null, { message: 'expected an address or CIDR' })),
    expiresAt: z.number().int().nullable(),
    createdAt: z.number().int(),
    createdBy: z.string(),
    lastUsedAt: z.number().int().nullable(),
    lastUsedIp: z.string().nullable(),
    lastUsedProtocol: z.enum(PROTOCOLS).nullable(),
    useCount: z.number().int().min(0),
    revokedAt: z.number().int().nullable(),
    policy: z
      .object({
        allowedSenders: z.array(address()),
        allowedRecipientDomains: z.array(z.string().transform((d) => d.trim().toLowerCase())),
        maxMessageBytes: z.number().int().positive().nullable(),
        maxMessagesPerHour: z.number().int().positive().nullable(),
        maxMessagesPerDay: z.number().int().positive().nullable(),
      })
      .strict()
      .default(NO_MESSAGE_LIMITS),
    selector: z.string().regex(/^[0-9a-f]{6}$/),
    hash: z.string().startsWith('$argon2'),
  })
  .strict();

/** Writes every record as one JSON line. */
export async function exportRecords(store: CredentialStore, write: (line: string) => void): Promise<number> {
  const records = await store.list();
  for (const record of records) write(`${JSON.stringify(record)}\n`);
  return records.length;
}

/**
 * Reads JSON lines written by exportRecords and puts each record into the store (same id: replaced).
 * Every line is validated before anything is written, so a bad file changes nothing.
 */
export async function importRecords(store: CredentialStore, lines: AsyncIterable<string> | Iterable<string>): Promise<number> {
  const records: AppPasswordRecord[] = [];
  let lineNo = 0;
  for await (const line of lines) {
    lineNo++;
    if (line.trim() === '') continue;
    let json: unknown;
    try {
      json = JSON.parse(line);
    } catch {
      throw new GatewayError('PG_INVALID_INPUT', `line ${lineNo}: not JSON`);
    }
    const parsed = recordSchema.safeParse(json);
    if (!parsed.success) {
      const issue = parsed.error.issues[0]!;
      throw new GatewayError('PG_INVALID_INPUT', `line ${lineNo}: ${issue.path.join('.') || 'record'}: ${issue.message}`);
    }
    records.push(parsed.data);
  }
  for (const record of records) await store.put(record);
  return records.length;
}
