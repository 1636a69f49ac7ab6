import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { MessageIdReader, parseMessageId, parseQueueId } from '../../../src/smtp/message-id-reader.js';

describe('message trace: Message-ID and queue id', () => {
  it('finds the Message-ID in the header section, folded or not, in any chunking, and nowhere else', () => {
    const message = 'From: a@example.com\r\nmessage-id:\r\n   <x.1@host.example>\r\nSubject: s\r\n\r\nMessage-ID: <in-the-body@example>\r\n';
    for (const size of [1, 3, 7, message.length]) {
      const reader = new MessageIdReader();
      for (let i = 0; i < message.length; i += size) reader.push(Buffer.from(message.slice(i, i + size), 'latin1'));
      assert.equal(reader.messageId, '<x.1@host.example>', `chunks of ${size}`);
    }
    const none = new MessageIdReader();
    none.push(Buffer.from('Subject: s\r\n\r\nMessage-ID: <body@example>\r\n'));
    assert.equal(none.messageId, null);
    assert.equal(parseMessageId('Message-Id: not-bracketed@example'), 'not-bracketed@example');
  });

  it('stops reading after 64 KiB of header', () => {
    const reader = new MessageIdReader();
    reader.push(Buffer.from(`X-Long: ${'a'.repeat(70_000)}\r\n`));
    reader.push(Buffer.from('Message-ID: <late@example>\r\n\r\n'));
    assert.equal(reader.messageId, null);
  });

  it('reads the upstream\'s id from Exchange, Postfix and Sendmail replies', () => {
    assert.equal(parseQueueId('2.0.0 OK <DM6PR01MB1234.namprd01.prod.outlook.com> [Hostname=DM6PR01MB1234.namprd01.prod.outlook.com]'), '<DM6PR01MB1234.namprd01.prod.outlook.com>');
    assert.equal(parseQueueId('2.0.0 Ok: queued as 4Fp1xX2kLzz9'), '4Fp1xX2kLzz9');
    assert.equal(parseQueueId('2.0.0 x4TJ1Lc1002345 Message accepted for delivery'), 'x4TJ1Lc1002345');
    assert.equal(parseQueueId('OK id=1qZ3aB-0004Xy-2c'), '1qZ3aB-0004Xy-2c');
    assert.equal(parseQueueId('2.0.0 OK, accepted by Microsoft Graph (request-id 5c1e2b7a-0d3f-4a9e-8b61-2f0c9d7e4a13)'), '5c1e2b7a-0d3f-4a9e-8b61-2f0c9d7e4a13');
    assert.equal(parseQueueId('2.0.0 OK'), null);
  });
});
