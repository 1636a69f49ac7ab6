import { z } from 'zod';
import { isValidUsername, NO_MESSAGE_LIMITS, normalizeUsername, type AppPasswordRecord } from '../core/app-password-record.js';
import { parseCidr } from '../core/network-list.js';
import type { AuditEvent, AuditLog } from '../core/audit-log.js';
import type { Clock } from '../core/clock.js';
import type { CredentialStore } from '../core/credential-store.js';
import type { EventLogger } from '../core/event-logger.js';
import { GatewayError } from '../core/gateway-error.js';
import type { ImportCounts } from '../core/imported-record.js';
import { samePepperCheck } from '../core/pepper-keys.js';
import { PROTOCOLS } from '../core/protocol.js';
import type { StoredTokenState, TokenSealer, TokenStateStore } from '../core/token-state-store.js';

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
    // Files exported before turning off existed have no disabledAt: those passwords were on.
    disabledAt: z.number().int().nullable().default(null),
    policy: z
      .object({
        allowedSenders: z.array(address()),
        allowedRecipientDomains: z.array(z.string().transform((d) => d.trim().toLowerCase())),
        maxMessageBytes: z.number().int().positive().nullable(),
        maxMessagesPerHour: z.number().int().positive().nullable(),
        maxMessagesPerDay: z.number().int().positive().nullable(),
        // Exports from before the From header check (issue 17) have none: the configured default.
        checkFromHeader: z.boolean().nullable().default(null),
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

/**
 * The first exported line: `{"pepperCheck": "v1.<hex>"}` (core/pepper-keys.ts), so an import under another pepper,
 * where no imported password would verify, is refused before anything is written. Files from before it have none.
 */
const pepperLineSchema = z
  .object({ pepperCheck: z.string().regex(/^v1\.[0-9a-f]{64}$/, { message: 'expected v1.<64 hex digits> (a file from a newer passgate?)' }) })
  .strict();

export interface Transferred {
  records: number;
  tokens: number;
}

/**
 * What an import did: records in the file and how each met the store; token states left as they were because the
 * store's was newer; whether the file carried a pepper check.
 */
export type Imported = Transferred & ImportCounts & { tokensKeptNewer: number; pepperChecked: boolean };

/** "3 app passwords (1 new, 1 replaced, 1 kept revoked), 2 token states (1 kept: newer here)" */
export function describeImport(n: Transferred & ImportCounts & { tokensKeptNewer?: number }): string {
  const kept = n.tokensKeptNewer ? ` (${n.tokensKeptNewer} kept: newer here)` : '';
  return `${n.records} app passwords (${n.added} new, ${n.replaced} replaced, ${n.keptRevoked} kept revoked), ${n.tokens} token states${kept}`;
}

export interface StoreTransferDeps {
  store: CredentialStore;
  tokenStates: TokenStateStore;
  /** Opens sealed tokens (oauth.token_encryption_key); null when not configured. */
  cipher: TokenSealer | null;
  audit: AuditLog;
  clock: Clock;
  log: EventLogger;
  /** This configuration's pepper check (core/pepper-keys.ts `pepperCheck`). */
  pepperCheck: string;
}

/** `passgate store export` / `import`: every app password record and token state as JSON lines, audited. */
export class StoreTransfer {
  constructor(private readonly deps: StoreTransferDeps) {}

  /**
   * Writes the pepper check, every app password record as one JSON line, then (with `tokens`) the state of every
   * token key: refresh and access tokens sealed as stored, so a delegated setup moves without connecting each
   * mailbox again. `destination` (a file, or "stdout") goes into the audit record with `by`.
   */
  async export(options: { tokens: boolean; by: string; destination: string }, write: (line: string) => void | Promise<void>): Promise<Transferred> {
    // Everything is read before the first line goes out: a store failing part way must not leave a pipe's reader
    // (`store export | ssh host passgate store import`) a truncated stream that imports cleanly.
    const records = await this.deps.store.list();
    const states = options.tokens ? await this.deps.tokenStates.list() : [];
    let lines = 0;
    try {
      await write(`${JSON.stringify({ pepperCheck: this.deps.pepperCheck })}\n`);
      for (const line of [...records, ...states.map((tokenState) => ({ tokenState }))]) {
        await write(`${JSON.stringify(line)}\n`);
        lines++;
      }
    } catch (error) {
      // What already went out (hashes and selectors included) is on the record even when the rest could not.
      await this.audit('store.export', 'unavailable', `by ${options.by}: stopped after ${lines} of ${records.length + states.length} lines to ${options.destination}: ${(error as Error).message}`);
      throw error;
    }
    const n = { records: records.length, tokens: states.length };
    await this.audit('store.export', 'ok', `by ${options.by}: ${n.records} app passwords, ${n.tokens} token states to ${options.destination}`);
    return n;
  }

  /**
   * Reads JSON lines written by `export` and imports the records into the store (same id: replaced, except that a
   * record revoked here stays revoked: `mergeImportedRecord`) and each token state into `tokenStates` (same key:
   * replaced, unless the state here is newer: an old file must not put back a refresh token the provider has since
   * rotated, and so invalidated, nor undo an `oauth connect` made since). Every line is checked before anything is
   * written, so a bad file changes nothing: the pepper check against this configuration's (a file without one, from
   * an older passgate, is taken as is), and every sealed token against `cipher` (this configuration's
   * oauth.token_encryption_key): tokens sealed under another key could never be used here.
   */
  async import(options: { by: string }, lines: AsyncIterable<string> | Iterable<string>): Promise<Imported> {
    const { records, states, pepperChecked } = await this.read(lines);
    let counts: ImportCounts;
    let tokensKeptNewer = 0;
    try {
      counts = await this.deps.store.importRecords(records);
      for (const state of states) if (!(await this.importTokenState(state))) tokensKeptNewer++;
    } catch (error) {
      await this.audit('store.import', 'unavailable', `by ${options.by}: failed: ${(error as Error).message}`);
      throw error;
    }
    const n = { records: records.length, tokens: states.length, ...counts, tokensKeptNewer, pepperChecked };
    await this.audit('store.import', 'ok', `by ${options.by}: ${describeImport(n)}${pepperChecked ? '' : ' (no pepper check in the file)'}`);
    return n;
  }

  /**
   * Writes one token state unless the store holds a newer one for its key; compare-and-set on the refresh token
   * read, so a rotation by a serving instance in between is not overwritten either. Returns whether it wrote.
   */
  private async importTokenState(state: StoredTokenState): Promise<boolean> {
    const current = await this.deps.tokenStates.get(state.key);
    if (current && current.updatedAt >= state.updatedAt) return false;
    return this.deps.tokenStates.putIf(state, 'sealedRefreshToken', current?.sealedRefreshToken ?? null);
  }

  private async read(lines: AsyncIterable<string> | Iterable<string>): Promise<{ records: AppPasswordRecord[]; states: StoredTokenState[]; pepperChecked: boolean }> {
    const records: AppPasswordRecord[] = [];
    const states: StoredTokenState[] = [];
    let pepperChecked = false;
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
      if (typeof json === 'object' && json !== null && 'pepperCheck' in json) {
        const parsed = pepperLineSchema.safeParse(json);
        if (!parsed.success) throw invalidLine(lineNo, parsed.error.issues[0]!);
        if (pepperChecked) throw new GatewayError('PG_INVALID_INPUT', `line ${lineNo}: a second pepper check: one file per export`);
        if (!samePepperCheck(parsed.data.pepperCheck, this.deps.pepperCheck)) {
          throw new GatewayError(
            'PG_INVALID_INPUT',
            `line ${lineNo}: the file was exported under another security.pepper than this configuration's, so none of its app passwords would verify here: set security.pepper (or security.pepper_file) to the exporting configuration's pepper; nothing was imported`,
          );
        }
        pepperChecked = true;
        continue;
      }
      if (typeof json === 'object' && json !== null && 'tokenState' in json) {
        const parsed = tokenLineSchema.safeParse(json);
        if (!parsed.success) throw invalidLine(lineNo, parsed.error.issues[0]!);
        checkSealed(this.deps.cipher, parsed.data.tokenState, lineNo);
        states.push(parsed.data.tokenState);
        continue;
      }
      const parsed = recordSchema.safeParse(json);
      if (!parsed.success) throw invalidLine(lineNo, parsed.error.issues[0]!);
      records.push(parsed.data);
    }
    return { records, states, pepperChecked };
  }

  /** The transfer is done (or failed) by now: a failed audit write is logged as an error, never thrown over it. */
  private async audit(action: 'store.export' | 'store.import', reason: 'ok' | 'unavailable', detail: string): Promise<void> {
    const event: AuditEvent = { at: this.deps.clock(), action, protocol: null, username: '(store)', clientIp: null, appPasswordId: null, appPasswordName: null, reason, detail };
    try {
      await this.deps.audit.append(event);
    } catch (error) {
      this.deps.log.error({ ...event, cause: (error as Error).message }, 'audit append failed');
    }
  }
}

function invalidLine(lineNo: number, issue: { path: PropertyKey[]; message: string }): GatewayError {
  return new GatewayError('PG_INVALID_INPUT', `line ${lineNo}: ${issue.path.map(String).join('.') || 'record'}: ${issue.message}`);
}

/** A sealed token must open under this configuration's key (it is bound to its token key as well). */
function checkSealed(cipher: TokenSealer | null, state: StoredTokenState, lineNo: number): void {
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
