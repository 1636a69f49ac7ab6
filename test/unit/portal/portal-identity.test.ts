import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { identityFromClaims, type IdentityRules } from '../../../src/portal/portal-identity.js';

const RULES: IdentityRules = {
  allowedDomains: ['example.com'],
  allowedClaim: { name: 'groups', values: ['partners-group'] },
  adminClaim: 'roles',
  adminValues: ['Passgate.Admin'],
  requireMfa: false,
  mailboxGrants: { 'Alice@Example.com': ['Scanner@example.com'] },
};
const NOW = 1_800_000_000;

describe('identityFromClaims', () => {
  it('takes the address from email, else preferred_username (the UPN), lower-cased, with granted mailboxes after it', () => {
    const one = identityFromClaims({ email: 'Alice@Example.com', auth_time: NOW - 5, amr: ['pwd', 'mfa'] }, RULES, NOW);
    assert.deepEqual(one, { ok: true, identity: { username: 'alice@example.com', role: 'user', mailboxes: ['alice@example.com', 'scanner@example.com'], authTime: NOW - 5, amr: ['pwd', 'mfa'] } });
    const upn = identityFromClaims({ preferred_username: 'bob@example.com' }, RULES, NOW);
    assert.equal(upn.ok && upn.identity.username, 'bob@example.com');
    assert.equal(upn.ok && upn.identity.authTime, NOW, 'no auth_time: now');
    const unverified = identityFromClaims({ email: 'ceo@example.com', email_verified: false, preferred_username: 'guest@partner.test' }, RULES, NOW);
    assert.deepEqual(unverified, { ok: false, reason: 'not-allowed', username: 'guest@partner.test' }, 'an unverified email is not taken');
  });

  it('refuses an account with no address, outside the domains and without the claim', () => {
    assert.deepEqual(identityFromClaims({ sub: 'x', preferred_username: 'not-an-address' }, RULES, NOW), { ok: false, reason: 'no-address', username: null });
    assert.deepEqual(identityFromClaims({ email: 'eve@evil.test' }, RULES, NOW), { ok: false, reason: 'not-allowed', username: 'eve@evil.test' });
    assert.equal(identityFromClaims({ email: 'eve@example.com.evil.test' }, RULES, NOW).ok, false, 'a domain is matched whole');
    assert.equal(identityFromClaims({ email: 'pat@partner.test', groups: ['partners-group'] }, RULES, NOW).ok, true, 'or by the claim');
  });

  it('makes an admin only by admin_claim holding an admin value (a string or a list)', () => {
    const admin = identityFromClaims({ email: 'ada@example.com', roles: ['Other', 'Passgate.Admin'] }, RULES, NOW);
    assert.equal(admin.ok && admin.identity.role, 'admin');
    const single = identityFromClaims({ email: 'ada@example.com', roles: 'Passgate.Admin' }, RULES, NOW);
    assert.equal(single.ok && single.identity.role, 'admin');
    const groupsOnly = identityFromClaims({ email: 'ada@example.com', groups: ['Passgate.Admin'] }, RULES, NOW);
    assert.equal(groupsOnly.ok && groupsOnly.identity.role, 'user', 'another claim with that value does not count');
  });

  it('with require_mfa, refuses a sign-in whose amr lacks mfa (RFC 8176)', () => {
    const rules = { ...RULES, requireMfa: true };
    assert.deepEqual(identityFromClaims({ email: 'alice@example.com', amr: ['pwd'] }, rules, NOW), { ok: false, reason: 'mfa-required', username: 'alice@example.com' });
    assert.equal(identityFromClaims({ email: 'alice@example.com' }, rules, NOW).ok, false, 'no amr at all');
    assert.equal(identityFromClaims({ email: 'alice@example.com', amr: ['pwd', 'mfa'] }, rules, NOW).ok, true);
  });
});
