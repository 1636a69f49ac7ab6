import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { asciiDomain, envelopeAddress } from '../../../src/smtp/envelope-address.js';
import { checkSender } from '../../../src/smtp/sender-policy.js';
import type { MessageLimiter } from '../../../src/core/message-limiter.js';
import type { MessagePolicy } from '../../../src/core/app-password-record.js';
import type { SMTPServerAddress } from 'smtp-server';

describe('envelope addresses in ASCII form', () => {
  it('turns a Unicode domain into A-labels and leaves the local part alone', () => {
    assert.equal(asciiDomain('Bücher.Example'), 'xn--bcher-kva.example');
    assert.equal(asciiDomain('xn--bcher-kva.example'), 'xn--bcher-kva.example');
    assert.equal(envelopeAddress('Jörg.Smith@bücher.example'), 'Jörg.Smith@xn--bcher-kva.example');
    assert.equal(envelopeAddress('user@[127.0.0.1]'), 'user@[127.0.0.1]', 'an address literal is not an IDN');
    assert.equal(envelopeAddress(''), '', 'the null sender');
  });

  it('checkSender matches the mailbox and allowed senders whichever form either side uses', async () => {
    const messages = { allows: async () => true } as unknown as MessageLimiter;
    const policy = { allowedSenders: ['scanner@bücher.example'], maxMessageBytes: null } as unknown as MessagePolicy;
    const login = { mailbox: 'owner@xn--bcher-kva.example', appPasswordId: 'id', policy };
    const from = (address: string) => ({ address, args: false }) as unknown as SMTPServerAddress;
    assert.equal(await checkSender(messages, login, from('owner@bücher.example')), null, 'smtp-server hands the mailbox over in Unicode');
    assert.equal(await checkSender(messages, login, from('scanner@xn--bcher-kva.example')), null, 'the policy lists it in Unicode');
    assert.notEqual(await checkSender(messages, login, from('someone@bücher.example')), null);
  });
});
