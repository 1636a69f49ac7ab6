import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { mergeImportedRecord } from '../../../src/core/imported-record.js';
import { makeRecord } from '../../helpers/records.js';

describe('mergeImportedRecord', () => {
  const file = makeRecord({ name: 'From the file', lastUsedAt: 100, lastUsedIp: '192.0.2.1', lastUsedProtocol: 'smtp', useCount: 5 });

  it('writes a record the store does not hold as given', () => {
    assert.deepEqual(mergeImportedRecord(null, file), { record: file, outcome: 'new' });
  });

  it('replaces a held record with the file\'s, keeping the later last use and the larger use count', () => {
    const later = { ...file, name: 'Here', lastUsedAt: 200, lastUsedIp: '198.51.100.2', lastUsedProtocol: 'imap' as const, useCount: 2 };
    assert.deepEqual(mergeImportedRecord(later, file), {
      record: { ...file, lastUsedAt: 200, lastUsedIp: '198.51.100.2', lastUsedProtocol: 'imap', useCount: 5 },
      outcome: 'replaced',
    });
    const earlier = { ...file, lastUsedAt: 50, lastUsedIp: '198.51.100.9', useCount: 9 };
    assert.deepEqual(mergeImportedRecord(earlier, file), { record: { ...file, useCount: 9 }, outcome: 'replaced' });
    const never = { ...file, lastUsedAt: null, lastUsedIp: null, lastUsedProtocol: null };
    assert.deepEqual(mergeImportedRecord({ ...file, lastUsedAt: 1 }, never).record.lastUsedAt, 1);
  });

  it('never undoes a revocation: the store\'s revokedAt stays', () => {
    const revoked = { ...file, revokedAt: 300 };
    assert.deepEqual(mergeImportedRecord(revoked, file), { record: { ...file, revokedAt: 300 }, outcome: 'kept-revoked' });
    assert.deepEqual(mergeImportedRecord(revoked, { ...file, revokedAt: 400 }), { record: { ...file, revokedAt: 300 }, outcome: 'replaced' });
    assert.deepEqual(mergeImportedRecord(file, { ...file, revokedAt: 400 }), { record: { ...file, revokedAt: 400 }, outcome: 'replaced' });
  });
});
