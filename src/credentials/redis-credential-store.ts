import { NO_MESSAGE_LIMITS, type AppPasswordRecord, type MessagePolicy } from '../core/app-password-record.js';
import type { AppPasswordPatch } from '../core/app-password-patch.js';
import type { CredentialStore, CredentialUse, InsertResult } from '../core/credential-store.js';
import { GatewayError, isGatewayError } from '../core/gateway-error.js';
import { countImport, mergeImportedRecord, type ImportCounts, type ImportOutcome } from '../core/imported-record.js';
import type { Protocol } from '../core/protocol.js';
import type { RedisClient } from '../redis/redis-client-factory.js';
import { announceRevocation } from './redis-revocation-feed.js';

/*
 * Key layout (prefix P, default "passgate:"). Every key of one user carries the hash tag {u:<username>},
 * so the scripts below touch a single slot and work on Redis Cluster.
 *   P{u:<user>}:ap:<id>   HASH   the record
 *   P{u:<user>}:sel       HASH   selector -> id
 *   P{u:<user>}:ids       ZSET   id scored by createdAt (listing order)
 *   P{u:<user>}:active    HASH   id -> expiresAt (0: never) for every not-revoked record (the per-user cap)
 *   Pid:<id>              STRING username (lookup by id)
 *   Pusers                SET    usernames (listing all)
 * The two global keys are an index, not a SCAN: listing all (`app-password list`, `store export`) and lookups by
 * id (revocation polling) cost one command each, on any deployment, instead of a walk of every master. They live
 * in other slots than the user's keys, so they are written with their own single-key commands; insert writes
 * them first, so a crash between the steps leaves an index entry pointing at nothing (skipped when read), never a
 * record nobody can list.
 * Every revocation, turning off and change of expiry is also announced on Pub/Sub (redis-revocation-feed.ts) so
 * instances check their live sessions at once.
 */

const INSERT = `
if redis.call('HEXISTS', KEYS[2], ARGV[1]) == 1 then return 'selector-taken' end
local active = redis.call('HGETALL', KEYS[4])
local now, n = tonumber(ARGV[3]), 0
for i = 1, #active, 2 do
  local exp = tonumber(active[i + 1])
  if exp == 0 or exp > now then n = n + 1 end
end
if n >= tonumber(ARGV[4]) then return 'limit-reached' end
redis.call('HSET', KEYS[1], unpack(ARGV, 7))
redis.call('HSET', KEYS[2], ARGV[1], ARGV[2])
redis.call('ZADD', KEYS[3], ARGV[5], ARGV[2])
redis.call('HSET', KEYS[4], ARGV[2], ARGV[6])
return 'ok'`;

const REVOKE = `
if redis.call('EXISTS', KEYS[1]) == 0 then return 0 end
local r = redis.call('HGET', KEYS[1], 'revokedAt')
if not r or r == '' then redis.call('HSET', KEYS[1], 'revokedAt', ARGV[1]) end
redis.call('HDEL', KEYS[2], ARGV[2])
return 1`;

// The records' keys are built from ARGV, not passed in KEYS: their number is known only inside the script. They
// carry KEYS[1]'s hash tag, so they live in its slot and Redis Cluster runs the script (a key of another slot
// would fail it with "non local key").
const REVOKE_ALL = `
local ids = redis.call('HKEYS', KEYS[1])
local out = {}
for _, id in ipairs(ids) do
  local key = ARGV[2] .. id
  local r = redis.call('HGET', key, 'revokedAt')
  if r == '' then
    redis.call('HSET', key, 'revokedAt', ARGV[1])
    table.insert(out, id)
  end
end
redis.call('DEL', KEYS[1])
return out`;

const RECORD_USE = `
if redis.call('EXISTS', KEYS[1]) == 0 then return 0 end
redis.call('HSET', KEYS[1], 'lastUsedAt', ARGV[1], 'lastUsedIp', ARGV[2], 'lastUsedProtocol', ARGV[3])
redis.call('HINCRBY', KEYS[1], 'useCount', 1)
return 1`;

const REPLACE_HASH = `
if redis.call('HGET', KEYS[1], 'hash') ~= ARGV[1] then return 0 end
redis.call('HSET', KEYS[1], 'hash', ARGV[2])
return 1`;

// `store import` of one record: written only if the record's revocation and last use are still what the merge
// (mergeImportedRecord) read, so a revocation or turning off made meanwhile is never overwritten; 0 tells the caller
// to read again. KEYS: record, sel, ids, active. ARGV: expected state ('-': no record; else
// revokedAt|lastUsedAt|disabledAt), id, selector,
// createdAt, the active-set value ('' when the merged record is revoked), then the record's fields.
const IMPORT = `
local state = '-'
local old = false
if redis.call('EXISTS', KEYS[1]) == 1 then
  local f = redis.call('HMGET', KEYS[1], 'revokedAt', 'lastUsedAt', 'selector', 'disabledAt')
  state = (f[1] or '') .. '|' .. (f[2] or '') .. '|' .. (f[4] or '')
  old = f[3]
end
if state ~= ARGV[1] then return 0 end
if old and old ~= ARGV[3] then redis.call('HDEL', KEYS[2], old) end
redis.call('DEL', KEYS[1])
redis.call('HSET', KEYS[1], unpack(ARGV, 6))
redis.call('HSET', KEYS[2], ARGV[3], ARGV[2])
redis.call('ZADD', KEYS[3], ARGV[4], ARGV[2])
if ARGV[5] == '' then redis.call('HDEL', KEYS[4], ARGV[2]) else redis.call('HSET', KEYS[4], ARGV[2], ARGV[5]) end
return 1`;

const IMPORT_ATTEMPTS = 5;

const importState = (r: AppPasswordRecord | null): string => (r === null ? '-' : `${r.revokedAt ?? ''}|${r.lastUsedAt ?? ''}|${r.disabledAt ?? ''}`);

// `update`: the patch's fields, on a record that exists and is not revoked. KEYS: record, active. ARGV: id, the
// turn off/on ('' unchanged, 'on', or the time it is turned off: kept if already off), the expiry ('-' unchanged,
// '' none, or epoch ms; mirrored into the active set for the per-user cap), then field pairs. 0: no record;
// 2: revoked (unchanged); 1: changed.
const UPDATE = `
if redis.call('EXISTS', KEYS[1]) == 0 then return 0 end
local r = redis.call('HGET', KEYS[1], 'revokedAt')
if r and r ~= '' then return 2 end
if #ARGV > 3 then redis.call('HSET', KEYS[1], unpack(ARGV, 4)) end
if ARGV[2] == 'on' then
  redis.call('HSET', KEYS[1], 'disabledAt', '')
elseif ARGV[2] ~= '' then
  local d = redis.call('HGET', KEYS[1], 'disabledAt')
  if not d or d == '' then redis.call('HSET', KEYS[1], 'disabledAt', ARGV[2]) end
end
if ARGV[3] ~= '-' then
  redis.call('HSET', KEYS[1], 'expiresAt', ARGV[3])
  if ARGV[3] == '' then redis.call('HSET', KEYS[2], ARGV[1], '0') else redis.call('HSET', KEYS[2], ARGV[1], ARGV[3]) end
end
return 1`;

const num = (v: string | undefined): number | null => (v === undefined || v === '' ? null : Number(v));
const str = (v: string | undefined): string | null => (v === undefined || v === '' ? null : v);

function toFields(r: AppPasswordRecord): string[] {
  const fields: Record<string, string> = {
    id: r.id,
    username: r.username,
    mailbox: r.mailbox,
    name: r.name,
    scopes: JSON.stringify(r.scopes),
    allowedNetworks: JSON.stringify(r.allowedNetworks),
    expiresAt: r.expiresAt === null ? '' : String(r.expiresAt),
    createdAt: String(r.createdAt),
    createdBy: r.createdBy,
    lastUsedAt: r.lastUsedAt === null ? '' : String(r.lastUsedAt),
    lastUsedIp: r.lastUsedIp ?? '',
    lastUsedProtocol: r.lastUsedProtocol ?? '',
    useCount: String(r.useCount),
    revokedAt: r.revokedAt === null ? '' : String(r.revokedAt),
    disabledAt: r.disabledAt === null ? '' : String(r.disabledAt),
    policy: JSON.stringify(r.policy),
    selector: r.selector,
    hash: r.hash,
  };
  return Object.entries(fields).flat();
}

function fromFields(h: Record<string, string>): AppPasswordRecord | null {
  if (h.id === undefined) return null;
  return {
    id: h.id,
    username: h.username!,
    mailbox: h.mailbox!,
    name: h.name!,
    scopes: JSON.parse(h.scopes ?? '[]') as Protocol[],
    allowedNetworks: JSON.parse(h.allowedNetworks ?? '[]') as string[],
    expiresAt: num(h.expiresAt),
    createdAt: Number(h.createdAt),
    createdBy: h.createdBy ?? '',
    lastUsedAt: num(h.lastUsedAt),
    lastUsedIp: str(h.lastUsedIp),
    lastUsedProtocol: str(h.lastUsedProtocol) as Protocol | null,
    useCount: Number(h.useCount ?? 0),
    revokedAt: num(h.revokedAt),
    disabledAt: num(h.disabledAt),
    policy: { ...NO_MESSAGE_LIMITS, ...(JSON.parse(h.policy ?? '{}') as Partial<MessagePolicy>) },
    selector: h.selector!,
    hash: h.hash!,
  };
}

/** The shared credential store: every passgate instance reads and writes the same Redis. */
export class RedisCredentialStore implements CredentialStore {
  constructor(
    private readonly redis: RedisClient,
    private readonly prefix: string,
  ) {}

  private userKey(username: string, suffix: string): string {
    return `${this.prefix}{u:${username}}:${suffix}`;
  }

  private idKey(id: string): string {
    return `${this.prefix}id:${id}`;
  }

  /** Every Redis failure becomes one temporary, named error; expected outcomes stay values. */
  private async run<T>(operation: string, fn: () => Promise<T>): Promise<T> {
    try {
      return await fn();
    } catch (cause) {
      if (isGatewayError(cause)) throw cause;
      throw new GatewayError('PG_STORE_UNAVAILABLE', `redis credential store: ${operation} failed: ${(cause as Error).message}`, { cause });
    }
  }

  private async load(username: string, id: string): Promise<AppPasswordRecord | null> {
    return fromFields(await this.redis.hgetall(this.userKey(username, `ap:${id}`)));
  }

  insert(record: AppPasswordRecord, limits: { maxActivePerUser: number; now: number }): Promise<InsertResult> {
    return this.run('insert', async () => {
      const u = record.username;
      // Index first: a crash between the two steps leaves an id pointing at nothing, never an unlisted record.
      await this.redis.set(this.idKey(record.id), u);
      await this.redis.sadd(`${this.prefix}users`, u);
      const outcome = (await this.redis.eval(
        INSERT,
        4,
        this.userKey(u, `ap:${record.id}`),
        this.userKey(u, 'sel'),
        this.userKey(u, 'ids'),
        this.userKey(u, 'active'),
        record.selector,
        record.id,
        String(limits.now),
        String(limits.maxActivePerUser),
        String(record.createdAt),
        String(record.expiresAt ?? 0),
        ...toFields(record),
      )) as string;
      if (outcome === 'ok') return { ok: true };
      await this.redis.del(this.idKey(record.id));
      return { ok: false, reason: outcome as 'limit-reached' | 'selector-taken' };
    });
  }

  findBySelector(username: string, selector: string): Promise<AppPasswordRecord | null> {
    return this.run('find', async () => {
      const id = await this.redis.hget(this.userKey(username, 'sel'), selector);
      return id === null ? null : this.load(username, id);
    });
  }

  get(id: string): Promise<AppPasswordRecord | null> {
    return this.run('get', async () => {
      const username = await this.redis.get(this.idKey(id));
      return username === null ? null : this.load(username, id);
    });
  }

  list(filter: { username?: string } = {}): Promise<AppPasswordRecord[]> {
    return this.run('list', async () => {
      const users = filter.username !== undefined ? [filter.username] : (await this.redis.smembers(`${this.prefix}users`)).sort();
      const out: AppPasswordRecord[] = [];
      for (const u of users) {
        const ids = await this.redis.zrange(this.userKey(u, 'ids'), '0', '-1');
        for (const id of ids) {
          const record = await this.load(u, id);
          if (record) out.push(record);
        }
      }
      return filter.username !== undefined ? out : out.sort((a, b) => a.createdAt - b.createdAt || a.id.localeCompare(b.id));
    });
  }

  revoke(id: string, at: number): Promise<AppPasswordRecord | null> {
    return this.run('revoke', async () => {
      const username = await this.redis.get(this.idKey(id));
      if (username === null) return null;
      await this.redis.eval(REVOKE, 2, this.userKey(username, `ap:${id}`), this.userKey(username, 'active'), String(at), id);
      await announceRevocation(this.redis, this.prefix, [id]);
      return this.load(username, id);
    });
  }

  revokeAll(username: string, at: number): Promise<AppPasswordRecord[]> {
    return this.run('revoke-all', async () => {
      const ids = (await this.redis.eval(REVOKE_ALL, 1, this.userKey(username, 'active'), String(at), this.userKey(username, 'ap:'))) as string[];
      await announceRevocation(this.redis, this.prefix, ids);
      const out: AppPasswordRecord[] = [];
      for (const id of ids) {
        const record = await this.load(username, id);
        if (record) out.push(record);
      }
      return out;
    });
  }

  update(id: string, patch: AppPasswordPatch): Promise<{ before: AppPasswordRecord; after: AppPasswordRecord } | null> {
    return this.run('update', async () => {
      const username = await this.redis.get(this.idKey(id));
      if (username === null) return null;
      const before = await this.load(username, id);
      if (before === null) return null;
      const fields: string[] = [];
      if (patch.name !== undefined) fields.push('name', patch.name);
      if (patch.allowedNetworks !== undefined) fields.push('allowedNetworks', JSON.stringify(patch.allowedNetworks));
      if (patch.policy !== undefined) fields.push('policy', JSON.stringify(patch.policy));
      const toggle = patch.disabledAt === undefined ? '' : patch.disabledAt === null ? 'on' : String(patch.disabledAt);
      const expiry = patch.expiresAt === undefined ? '-' : patch.expiresAt === null ? '' : String(patch.expiresAt);
      const outcome = await this.redis.eval(UPDATE, 2, this.userKey(username, `ap:${id}`), this.userKey(username, 'active'), id, toggle, expiry, ...fields);
      if (outcome === 0) return null;
      // Live sessions of a password turned off (or whose expiry moved) end on every instance at once, as on a revoke.
      if (outcome === 1 && ((patch.disabledAt !== undefined && patch.disabledAt !== null) || patch.expiresAt !== undefined)) {
        await announceRevocation(this.redis, this.prefix, [id]);
      }
      const after = await this.load(username, id);
      return after === null ? null : { before, after };
    });
  }

  recordUse(id: string, use: CredentialUse): Promise<void> {
    return this.run('record-use', async () => {
      const username = await this.redis.get(this.idKey(id));
      if (username === null) return;
      await this.redis.eval(RECORD_USE, 1, this.userKey(username, `ap:${id}`), String(use.at), use.ip, use.protocol);
    });
  }

  replaceHash(id: string, expectedHash: string, newHash: string): Promise<boolean> {
    return this.run('replace-hash', async () => {
      const username = await this.redis.get(this.idKey(id));
      if (username === null) return false;
      return (await this.redis.eval(REPLACE_HASH, 1, this.userKey(username, `ap:${id}`), expectedHash, newHash)) === 1;
    });
  }

  /** Record by record (see the port): each one a compare-and-set script on its user's slot, read again on a race. */
  importRecords(records: readonly AppPasswordRecord[]): Promise<ImportCounts> {
    return this.run('import', async () => {
      const counts: ImportCounts = { added: 0, replaced: 0, keptRevoked: 0 };
      for (const record of records) countImport(counts, await this.importOne(record));
      return counts;
    });
  }

  private async importOne(incoming: AppPasswordRecord): Promise<ImportOutcome> {
    const u = incoming.username;
    // The index first, as insert does: a crash part way leaves an entry pointing at nothing, never an unlisted record.
    await this.redis.sadd(`${this.prefix}users`, u);
    for (let attempt = 0; attempt < IMPORT_ATTEMPTS; attempt++) {
      const owner = await this.redis.get(this.idKey(incoming.id));
      if (owner === null) await this.redis.set(this.idKey(incoming.id), u);
      const here = await this.load(u, incoming.id);
      // A file that gives the id another user (only a hand-edited one does) moves the record: merged against the
      // old user's copy, which is then taken out. That move is not guarded against a revocation at the same instant.
      const moved = owner !== null && owner !== u ? await this.load(owner, incoming.id) : null;
      const previous = moved ?? here;
      const { record, outcome } = mergeImportedRecord(previous, incoming);
      const written = await this.redis.eval(
        IMPORT,
        4,
        this.userKey(u, `ap:${record.id}`),
        this.userKey(u, 'sel'),
        this.userKey(u, 'ids'),
        this.userKey(u, 'active'),
        importState(here),
        record.id,
        record.selector,
        String(record.createdAt),
        record.revokedAt === null ? String(record.expiresAt ?? 0) : '',
        ...toFields(record),
      );
      if (written !== 1) continue;
      if (owner !== null && owner !== u) {
        await this.redis.set(this.idKey(record.id), u);
        await this.removeFromUser(owner, record.id);
      }
      // A file can revoke or turn off a record that was active here: its live sessions end as with `app-password revoke`.
      const ended = (record.revokedAt !== null && previous?.revokedAt === null) || (record.disabledAt !== null && previous?.disabledAt === null);
      if (ended) await announceRevocation(this.redis, this.prefix, [record.id]);
      return outcome;
    }
    throw new GatewayError('PG_STORE_CONFLICT', `redis credential store: app password ${incoming.id} kept changing during the import; run it again`);
  }

  /** Takes a record out of a user's keys (an import that moved the id to another user). */
  private async removeFromUser(username: string, id: string): Promise<void> {
    const old = await this.load(username, id);
    const tx = this.redis.multi();
    if (old) tx.hdel(this.userKey(username, 'sel'), old.selector);
    tx.del(this.userKey(username, `ap:${id}`));
    tx.zrem(this.userKey(username, 'ids'), id);
    tx.hdel(this.userKey(username, 'active'), id);
    await tx.exec();
  }

  ping(): Promise<void> {
    return this.run('ping', async () => {
      await this.redis.ping();
    });
  }

  async close(): Promise<void> {
    // The Redis client belongs to the composition root, which closes it once.
  }
}
