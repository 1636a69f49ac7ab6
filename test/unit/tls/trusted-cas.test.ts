import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { rootCertificates } from 'node:tls';
import { trustedCas } from '../../../src/tls/client-secure-context.js';

describe('trustedCas (what a ca_file means)', () => {
  it('adds the file\'s CAs to Node\'s bundled public roots instead of replacing them', () => {
    const extra = '-----BEGIN CERTIFICATE-----\nprivate\n-----END CERTIFICATE-----\n';
    const cas = trustedCas(extra);
    assert.ok(rootCertificates.length > 100, 'Node bundles the public roots');
    assert.equal(cas.length, rootCertificates.length + 1);
    assert.ok(cas.includes(extra));
    for (const root of rootCertificates) assert.ok(cas.includes(root));
  });
});
