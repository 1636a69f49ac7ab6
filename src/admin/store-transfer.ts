import { z } from 'zod';
import { isValidUsername, NO_MESSAGE_LIMITS, normalizeUsername, type AppPasswordRecord } from '../core/app-password-record.js';
import { parseCidr } from '../core/network-list.js';
import type { CredentialStore } from '../core/credential-store.js';
import { GatewayError } from '../core/gateway-error.js';
import type { ImportCounts } from '../core/imported-record.js';
import { PROTOCOLS } from '../core/protocol.js';
import type { StoredTokenState, TokenStateStore } from '../core/token-state-store.js';
import type { TokenCipher } from '../oauth/token-cipher.js';

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

/**
 * One exported token line: `{"tokenState": {...}}`, the state of one token key as stored. Its tokens stay sealed
 * (AES-256-GCM under oauth.token_encryption_key, bound to the key): a file never holds a token in clear.
 */
const sealed = () => z.string().regex(/^v1\.[A-Za-z0-9_-]+\.[A-Za-z0-9_-]+\.[A-Za-z0-9_-]*$/, { message: 'expected a sealed token' }).nullable();
const when = () => z.number().int().nullable();
const tokenLineSchema = z
  .object({
    tokenState: z
      .object({
        key: z.string().regex(/^(app|mailbox:[^\s]+)$/, { message: 'expected app or mailbox:<address>' }),
        sealedRefreshToken: sealed(),
        sealedAccessToken: sealed(),
        accessExpiresAt: when(),
        accessObtainedAt: when(),
        status: z.enum(['ok', 'needs-connect', 'failing', 'unknown']),
        lastSuccessAt: when(),
        failingSince: when(),
        failures: z.number().int().min(0),
        nextAttemptAt: when(),
        lastError: z.string().nullable(),
        updatedAt: z.number().int(),
      })
      .strict(),
  })
  .strict();

export interface Transferred {
  records: number;
  tokens: number;
}

/** What an import did: records in the file, and how each met the store (new, replaced, kept revoked). */
export type Imported = Transferred & ImportCounts;

/** "imported 3 app passwords (1 new, 1 replaced, 1 kept revoked), 2 token states" */
export function describeImport(n: Imported): string {
  return `${n.records} app passwords (${n.added} new, ${n.replaced} replaced, ${n.keptRevoked} kept revoked), ${n.tokens} token states`;
}

/**
 * Writes every app password record as one JSON line, then (with `tokenStates`) the state of every token key:
 * refresh and access tokens sealed as stored, so a delegated setup moves without connecting each mailbox again.
 */
export async function exportStore(store: CredentialStore, tokenStates: TokenStateStore | null, write: (line: string) => void): Promise<Transferred> {
  const records = await store.list();
  for (const record of records) write(`${JSON.stringify(record)}\n`);
  const states = tokenStates ? await tokenStates.list() : [];
  for (const tokenState of states) write(`${JSON.stringify({ tokenState })}\n`);
  return { records: records.length, tokens: states.length };
}

/**
 * Reads JSON lines written by exportStore and imports the records into the store (same id: replaced, except that a
 * record revoked here stays revoked: `mergeImportedRecord`) and each token state into `tokenStates` (same key:
 * replaced). Every line is validated before anything is written, so a bad file changes nothing; so is every sealed
 * token, against `cipher` (this configuration's oauth.token_encryption_key): tokens sealed under another key could
 * never be used here.
 */
export async function importStore(
  target: { store: CredentialStore; tokenStates: TokenStateStore; cipher: TokenCipher | null },
  lines: AsyncIterable<string> | Iterable<string>,
): Promise<Imported> {
  const records: AppPasswordRecord[] = [];
  const states: StoredTokenState[] = [];
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
    if (typeof json === 'object' && json !== null && 'tokenState' in json) {
      const parsed = tokenLineSchema.safeParse(json);
      if (!parsed.success) throw invalidLine(lineNo, parsed.error.issues[0]!);
      checkSealed(target.cipher, parsed.data.tokenState, lineNo);
      states.push(parsed.data.tokenState);
      continue;
    }
    const parsed = recordSchema.safeParse(json);
    if (!parsed.success) throw invalidLine(lineNo, parsed.error.issues[0]!);
    records.push(parsed.data);
  }
  const counts = await target.store.importRecords(records);
  for (const state of states) await target.tokenStates.put(state);
  return { records: records.length, tokens: states.length, ...counts };
}

function invalidLine(lineNo: number, issue: { path: PropertyKey[]; message: string }): GatewayError {
  return new GatewayError('PG_INVALID_INPUT', `line ${lineNo}: ${issue.path.map(String).join('.') || 'record'}: ${issue.message}`);
}

/** A sealed token must open under this configuration's key (it is bound to its token key as well). */
function checkSealed(cipher: TokenCipher | null, state: StoredTokenState, lineNo: number): void {
  for (const field of ['sealedRefreshToken', 'sealedAccessToken'] as const) {
    const value = state[field];
    if (value === null) continue;
    if (!cipher) throw new GatewayError('PG_INVALID_INPUT', `line ${lineNo}: ${state.key} holds sealed tokens, but oauth.token_encryption_key is not set here: set it to the key the exporting configuration used`);
    try {
      cipher.open(value, state.key);
    } catch {
      throw new GatewayError('PG_INVALID_INPUT', `line ${lineNo}: ${state.key}: its ${field === 'sealedRefreshToken' ? 'refresh' : 'access'} token does not open with this configuration's oauth.token_encryption_key: use the key the exporting configuration used`);
    }
  }
}
