import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { resolve } from 'node:path';
import { describe, it } from 'node:test';
import { explainFailure, KNOWN_FAILURES } from '../../../src/doctor/microsoft-failures.js';
import { readTokenClaims } from '../../../src/doctor/token-claims.js';

describe('the table of known upstream failures', () => {
  it('maps each entry\'s own example back to that entry (no entry is shadowed by an earlier one)', () => {
    for (const failure of KNOWN_FAILURES) {
      assert.equal(explainFailure(failure.stage, failure.example)?.id, failure.id, failure.example);
    }
  });

  it('has unique ids, every one listed in docs/troubleshooting.md', () => {
    const ids = KNOWN_FAILURES.map((f) => f.id);
    assert.equal(new Set(ids).size, ids.length);
    const doc = readFileSync(resolve(import.meta.dirname, '../../../docs/troubleshooting.md'), 'utf8');
    for (const id of ids) assert.ok(doc.includes(`\`${id}\``), `docs/troubleshooting.md does not list ${id}`);
  });

  it('explains Exchange Online\'s own wording', () => {
    const cases: [Parameters<typeof explainFailure>[0], string, string][] = [
      ['smtp', '535 5.7.139 Authentication unsuccessful, SmtpClientAuthentication is disabled for the Tenant. Visit https://aka.ms/smtp_auth_disabled for more information. [AM0PR01CA0001.eurprd01.prod.exchangelabs.com]', 'smtp-auth-disabled-tenant'],
      ['smtp', '535 5.7.139 Authentication unsuccessful, SmtpClientAuthentication is disabled for the Mailbox. Visit https://aka.ms/smtp_auth_disabled for more information.', 'smtp-auth-disabled'],
      ['smtp', '535 5.7.139 Authentication unsuccessful, the request did not meet the criteria to be authenticated successfully. Contact your administrator.', 'smtp-auth-disabled'],
      ['smtp', '535 5.7.3 Authentication unsuccessful [SN4PR0601CA0002.namprd06.prod.outlook.com]', 'smtp-token-refused'],
      ['imap', 'NO AUTHENTICATE failed.', 'imap-authenticate-failed'],
      ['imap', 'BAD User is authenticated but not connected.', 'imap-not-connected'],
      ['pop3', '-ERR Authentication failure: unknown user name or bad password.', 'pop3-authentication-failure'],
      ['pop3', '-ERR Logon failure: unknown user name or bad password.', 'pop3-authentication-failure'],
      ['pop3', '-ERR [SYS/TEMP] Temporary authentication failure.', 'pop3-temporary'],
      ['token', 'mailbox:u@x: grant-lost failure from the provider: invalid_grant: AADSTS50076: Due to a configuration change made by your administrator, or because you moved to a new location, you must use multi-factor authentication', 'aadsts-mfa-required'],
      ['token', 'invalid_client: AADSTS700016: Application with identifier \'x\' was not found in the directory \'Contoso\'.', 'aadsts-app-not-found'],
      ['token', 'mailbox:u@x needs `passgate oauth connect --mailbox u@x`: no usable refresh token', 'aadsts-grant-lost'],
      ['connect', 'cannot reach upstream smtp.office365.com:587: getaddrinfo EAI_AGAIN smtp.office365.com', 'dns-failed'],
    ];
    for (const [stage, text, id] of cases) assert.equal(explainFailure(stage, text)?.id, id, text);
    assert.equal(explainFailure('smtp', '235 2.7.0 Authentication successful'), null);
  });
});

describe('readTokenClaims', () => {
  const jwt = (payload: object) => `${Buffer.from('{"alg":"RS256"}').toString('base64url')}.${Buffer.from(JSON.stringify(payload)).toString('base64url')}.c2ln`;

  it('reads audience, roles and scopes of a JWT, and nothing of an opaque token', () => {
    assert.deepEqual(readTokenClaims(jwt({ aud: 'https://outlook.office365.com', roles: ['IMAP.AccessAsApp', 'SMTP.SendAsApp'] })), {
      audience: 'https://outlook.office365.com',
      roles: ['IMAP.AccessAsApp', 'SMTP.SendAsApp'],
      scopes: [],
    });
    assert.deepEqual(readTokenClaims(jwt({ aud: ['a', 'b'], scp: 'IMAP.AccessAsUser.All SMTP.Send' }))?.scopes, ['IMAP.AccessAsUser.All', 'SMTP.Send']);
    assert.equal(readTokenClaims('at-0123456789abcdef'), null);
    assert.equal(readTokenClaims('a.!!!.c'), null);
  });
});
