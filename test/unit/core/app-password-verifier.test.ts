import assert from 'node:assert/strict';
import { Argon2PasswordHasher } from '../../../src/credentials/argon2-password-hasher.js';
import { derivePepperKeys } from '../../../src/core/pepper-keys.js';
import { after, before, beforeEach, describe, it } from 'node:test';
import { openApp, type App } from '../../../src/app.js';
import { AppPasswordVerifier } from '../../../src/core/app-password-verifier.js';
import { CredentialSelector } from '../../../src/core/credential-selector.js';
import { GatewayError } from '../../../src/core/gateway-error.js';
import type { PasswordHasher } from '../../../src/core/password-hasher.js';
import { createLogger } from '../../../src/observability/logger.js';
import { CountingHasher } from '../../helpers/counting-hasher.js';
import { makeTestConfig, type TestConfig } from '../../helpers/test-config.js';
import { CLI_ACTOR } from '../../../src/core/actor.js';

describe('AppPasswordVerifier (real argon2, real SQLite)', () => {
  let tc: TestConfig;
  let app: App;
  let hasher: CountingHasher;
  const clock = { now: 1_800_000_000_000 };

  before(async () => {
    tc = makeTestConfig();
    app = await openApp(tc.config, {
      logger: createLogger('silent'),
      clock: () => clock.now,
      decorateHasher: (inner) => (hasher = new CountingHasher(inner)),
    });
  });
  after(async () => {
    await app.close();
    tc.cleanup();
  });
  beforeEach(() => hasher.reset());

  const create = (user: string, extra: Partial<Parameters<App['admin']['appPasswords']['create']>[1]> = {}) =>
    app.admin.appPasswords.create(CLI_ACTOR, { username: user, name: 'Device', ...extra });

  it('accepts the password as shown, and as retyped without dashes, with spaces or in capitals', async () => {
    const { password, view } = await create('Retype@Example.com');
    for (const typed of [password, password.replace(/-/g, ''), password.replace(/-/g, ' '), password.toUpperCase()]) {
      const result = await app.verifier.verify('retype@example.com', typed);
      assert.equal(result.ok, true, typed);
      assert.equal(result.record?.id, view.id);
    }
    assert.equal((await app.verifier.verify('RETYPE@example.com', password)).ok, true);
  });

  it('costs exactly one argon2 verification per attempt, however many passwords the user holds', async () => {
    const created = [];
    for (let i = 0; i < 10; i++) created.push(await create('ten@example.com', { name: `Device ${i}` }));
    hasher.reset();
    for (const { password, view } of created) {
      const result = await app.verifier.verify('ten@example.com', password);
      assert.equal(result.ok && result.record.id, view.id);
    }
    assert.equal(hasher.verifications, 10);
    hasher.reset();
    const wrong = await app.verifier.verify('ten@example.com', 'aaaa-bbbb-cccc-dddd');
    assert.deepEqual([wrong.ok, wrong.reason, hasher.verifications], [false, 'invalid-credentials', 1]);
  });

  it('answers an unknown user exactly like a wrong password, at the same cost', async () => {
    await create('known@example.com');
    hasher.reset();
    const wrong = await app.verifier.verify('known@example.com', 'aaaa-bbbb-cccc-dddd');
    const wrongCalls = hasher.verifications;
    hasher.reset();
    const unknown = await app.verifier.verify('nobody@example.com', 'aaaa-bbbb-cccc-dddd');
    assert.deepEqual(unknown, wrong);
    assert.deepEqual(unknown, { ok: false, reason: 'invalid-credentials', record: null });
    assert.equal(hasher.verifications, wrongCalls);
    assert.equal(wrongCalls, 1);
  });

  it('does not remember a failed dummy hash: an overload once must not answer every later miss "unavailable"', async () => {
    let failNextHash = true;
    const flaky: PasswordHasher = {
      hash: (pw) => (failNextHash ? ((failNextHash = false), Promise.reject(new GatewayError('PG_OVERLOADED', 'queue full'))) : hasher.hash(pw)),
      verify: (h, pw) => hasher.verify(h, pw),
      needsRehash: (h) => hasher.needsRehash(h),
    };
    const verifier = new AppPasswordVerifier({ store: app.store, hasher: flaky, selector: new CredentialSelector(Buffer.alloc(32)), format: app.format, clock: () => clock.now });
    await assert.rejects(verifier.verify('ghost@example.com', 'abcd-efgh-ijkl-mnop'), { code: 'PG_OVERLOADED' });
    hasher.reset();
    assert.deepEqual(await verifier.verify('ghost@example.com', 'abcd-efgh-ijkl-mnop'), { ok: false, reason: 'invalid-credentials', record: null });
    assert.equal(hasher.verifications, 1, 'the miss was hashed, like any other');
  });

  it('refuses what cannot be an app password without hashing at all', async () => {
    await create('garbage@example.com');
    for (const bad of ['', 'hunter2', 'Summer2026!', 'x'.repeat(500), 'abcd-efgh-ijkl-mno1']) {
      assert.equal((await app.verifier.verify('garbage@example.com', bad)).reason, 'invalid-credentials');
    }
    assert.equal(hasher.verifications, 0);
  });

  it('stores only an argon2id PHC string with the configured parameters (and the pepper as secret)', async () => {
    const { password, view } = await create('phc@example.com');
    const record = (await app.store.get(view.id))!;
    assert.match(record.hash, /^\$argon2id\$v=19\$m=1024,p=1,t=1\$/);
    assert.ok(!record.hash.includes(password.replace(/-/g, '')));
    // The pepper is argon2's secret: the same hash does not verify under another pepper (and passgate refuses to
    // open this store with another pepper at all: its pepper check).
    const other = makeTestConfig({ security: { pepper: 'another-pepper-0123456789' } });
    try {
      await assert.rejects(openApp({ ...other.config, sqlite: tc.config.sqlite }, { logger: createLogger('silent') }), /another pepper/);
      const otherHasher = new Argon2PasswordHasher({ memoryKib: 1024, timeCost: 1, parallelism: 1 }, derivePepperKeys('another-pepper-0123456789').hashSecret);
      assert.equal(await otherHasher.verify(record.hash, password.replace(/-/g, '')), false);
      const sameHasher = new Argon2PasswordHasher({ memoryKib: 1024, timeCost: 1, parallelism: 1 }, derivePepperKeys(tc.config.security.pepper).hashSecret);
      assert.equal(await sameHasher.verify(record.hash, password.replace(/-/g, '')), true);
    } finally {
      other.cleanup();
    }
  });

  it('honours expiry at verification', async () => {
    const { password } = await create('expiry@example.com', { expiresAt: clock.now + 60_000 });
    assert.equal((await app.verifier.verify('expiry@example.com', password)).ok, true);
    clock.now += 60_000;
    const result = await app.verifier.verify('expiry@example.com', password);
    assert.deepEqual([result.ok, result.reason], [false, 'expired']);
    clock.now -= 60_000;
  });

  it('honours revocation at verification and names the revoked password', async () => {
    const { password, view } = await create('revoked@example.com', { name: 'Old printer' });
    await app.admin.appPasswords.revoke(CLI_ACTOR, view.id);
    const result = await app.verifier.verify('revoked@example.com', password);
    assert.deepEqual([result.ok, result.reason, result.record?.name], [false, 'revoked', 'Old printer']);
  });

  it('revoke-all stops every password of that user and no one else', async () => {
    const a = await create('all@example.com');
    const b = await create('all@example.com');
    const other = await create('other@example.com');
    assert.equal((await app.admin.appPasswords.revokeAll(CLI_ACTOR, 'ALL@example.com')).revoked.length, 2);
    assert.equal((await app.verifier.verify('all@example.com', a.password)).reason, 'revoked');
    assert.equal((await app.verifier.verify('all@example.com', b.password)).reason, 'revoked');
    assert.equal((await app.verifier.verify('other@example.com', other.password)).ok, true);
  });

  it('enforces the per-user cap (app_passwords.max_per_user), counting only active passwords', async () => {
    for (let i = 0; i < 10; i++) await create('cap@example.com');
    await assert.rejects(create('cap@example.com'), { code: 'PG_LIMIT_REACHED', message: /max_per_user/ });
    const [first] = await app.admin.appPasswords.list(CLI_ACTOR, { username: 'cap@example.com' });
    await app.admin.appPasswords.revoke(CLI_ACTOR, first!.id);
    await create('cap@example.com');
  });

  it('re-hashes on the next successful use after the parameters change', async () => {
    const { password, view } = await create('rehash@example.com');
    const before = (await app.store.get(view.id))!.hash;
    assert.match(before, /m=1024,p=1,t=1/);
    const raised = makeTestConfig({ security: { pepper: 'test-pepper-0123456789abcdef', argon2: { memory_kib: 2048, time_cost: 2, parallelism: 1 } } });
    let counting!: CountingHasher;
    const upgraded = await openApp({ ...raised.config, sqlite: tc.config.sqlite }, {
      logger: createLogger('silent'),
      clock: () => clock.now,
      decorateHasher: (inner) => (counting = new CountingHasher(inner)),
    });
    try {
      assert.equal((await upgraded.verifier.verify('rehash@example.com', password)).ok, true);
      assert.equal(counting.hashes, 1, 'exactly one re-hash');
      const after = (await upgraded.store.get(view.id))!.hash;
      assert.match(after, /^\$argon2id\$v=19\$m=2048,p=1,t=2\$/);
      counting.reset();
      assert.equal((await upgraded.verifier.verify('rehash@example.com', password)).ok, true);
      assert.equal(counting.hashes, 0, 'no second re-hash');
      // The old parameters still verify the new hash (parameters live in the PHC string).
      assert.equal((await app.verifier.verify('rehash@example.com', password)).ok, true);
    } finally {
      await upgraded.close();
      raised.cleanup();
    }
  });
});
