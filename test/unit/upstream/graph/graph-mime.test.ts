import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { splitAttachments } from '../../../../src/upstream/graph/graph-attachment-split.js';
import { graphOutcome, retryAfterSeconds } from '../../../../src/upstream/graph/graph-errors.js';
import { headerRecipients, prepareMime } from '../../../../src/upstream/graph/graph-mime.js';

const msg = (header: string, body = 'hi\r\n') => Buffer.from(`${header}\r\n\r\n${body}`, 'latin1');

describe('Graph MIME: exactly the envelope recipients', () => {
  it('reads To, Cc and Bcc, folded, with display names holding addresses and empty groups', () => {
    const r = headerRecipients('From: a@x\r\nTo: "b@evil" <B@Example.org>,\r\n c@example.org\r\nCc: undisclosed-recipients:;\r\nBcc: (note) d@example.net');
    assert.deepEqual(r, { to: ['B@Example.org', 'c@example.org'], cc: [], bcc: ['d@example.net'] });
  });

  it('adds envelope-only recipients as one Bcc field and replaces the Bcc fields the client left', () => {
    const p = prepareMime(msg('From: a@x\r\nTo: b@example.org\r\nBcc: c@example.org,\r\n d@example.org\r\nSubject: s'), ['b@example.org', 'c@example.org', 'd@example.org', 'e@example.org']);
    assert.ok(p.ok);
    assert.equal(p.mime.toString('latin1'), 'From: a@x\r\nTo: b@example.org\r\nSubject: s\r\nBcc: c@example.org,\r\n d@example.org,\r\n e@example.org\r\n\r\nhi\r\n');
  });

  it('leaves the message untouched when the header names every envelope recipient', () => {
    const m = Buffer.from('From: a@x\r\nTo: B@EXAMPLE.org\r\nCc: c@bücher.example\r\n\r\nhi\r\n', 'utf8');
    const p = prepareMime(m, ['b@example.org', 'c@xn--bcher-kva.example']);
    assert.ok(p.ok);
    assert.ok(p.mime.equals(m));
  });

  it('refuses a header recipient that is not in the envelope', () => {
    assert.deepEqual(prepareMime(msg('To: b@example.org, x@example.org'), ['b@example.org']), { ok: false, notInEnvelope: ['x@example.org'] });
    assert.deepEqual(prepareMime(msg('Bcc: y@example.org'), ['b@example.org']), { ok: false, notInEnvelope: ['y@example.org'] });
  });
});

describe('Graph errors', () => {
  it('sorts codes and statuses into outcomes', () => {
    assert.equal(graphOutcome(202, null, null), 'sent');
    assert.equal(graphOutcome(403, 'ErrorSendAsDenied', ''), 'send-as-denied');
    assert.equal(graphOutcome(404, 'MailboxNotEnabledForRESTAPI', 'REST API is not yet supported for this mailbox.'), 'mailbox-not-enabled');
    assert.equal(graphOutcome(403, 'ErrorAccessDenied', 'Access to OData is disabled: [RAOP] : Blocked by tenant configured AppOnly AccessPolicy settings.'), 'scope-denied');
    assert.equal(graphOutcome(403, 'ErrorAccessDenied', 'Access is denied. Check credentials and try again.'), 'access-denied');
    assert.equal(graphOutcome(403, 'Authorization_RequestDenied', 'Insufficient privileges'), 'access-denied');
    assert.equal(graphOutcome(413, 'RequestEntityTooLarge', ''), 'too-big');
    assert.equal(graphOutcome(400, 'ErrorMessageSizeExceeded', ''), 'too-big');
    assert.equal(graphOutcome(507, 'ErrorQuotaExceeded', ''), 'quota-exceeded');
    assert.equal(graphOutcome(404, 'ErrorInvalidUser', "The requested user 'x' is invalid."), 'mailbox-not-found');
    assert.equal(graphOutcome(401, 'InvalidAuthenticationToken', ''), 'token-refused');
    for (const s of [429, 503, 504]) assert.equal(graphOutcome(s, null, null), 'throttled');
    assert.equal(graphOutcome(400, 'ErrorInvalidRecipients', ''), 'invalid-message');
    assert.equal(graphOutcome(500, 'InternalServerError', ''), 'unavailable');
  });

  it('reads Retry-After as seconds or an HTTP date', () => {
    assert.equal(retryAfterSeconds('7'), 7);
    assert.equal(retryAfterSeconds(new Date(10_000 + 30_000).toUTCString(), 10_000), 30);
    assert.equal(retryAfterSeconds(null), null);
    assert.equal(retryAfterSeconds('soon'), null);
  });
});

describe('Graph large messages: the draft and its attachments', () => {
  const big = Buffer.alloc(5000, 7);
  const message = Buffer.from(
    'To: a@x\r\nContent-Type: multipart/mixed; boundary=B\r\n\r\npre\r\n--B\r\nContent-Type: text/plain\r\n\r\nbody\r\n' +
      `--B\r\nContent-Type: application/pdf; name=a.pdf\r\nContent-Transfer-Encoding: base64\r\nContent-ID: <c1>\r\n\r\n${big.toString('base64')}\r\n` +
      '--B\r\nContent-Type: text/csv\r\nContent-Disposition: inline; filename="t.csv"\r\n\r\n1,2\r\n--B--\r\n',
  );

  it('takes out the largest parts until the rest fits, keeping the text and the rest byte for byte', () => {
    const split = splitAttachments(message, 1000)!;
    assert.equal(split.attachments.length, 1);
    assert.deepEqual({ ...split.attachments[0], bytes: split.attachments[0]!.bytes.equals(big) }, { name: 'a.pdf', contentType: 'application/pdf', contentId: 'c1', isInline: false, bytes: true });
    assert.equal(split.draft.toString(), 'To: a@x\r\nContent-Type: multipart/mixed; boundary=B\r\n\r\npre\r\n--B\r\nContent-Type: text/plain\r\n\r\nbody\r\n--B\r\nContent-Type: text/csv\r\nContent-Disposition: inline; filename="t.csv"\r\n\r\n1,2\r\n--B--\r\n');
  });

  it('null when it cannot be cut small enough: not multipart, or the text alone too big', () => {
    assert.equal(splitAttachments(Buffer.from(`To: a@x\r\n\r\n${'x'.repeat(5000)}`), 1000), null);
    assert.equal(splitAttachments(message, 50), null);
  });
});

describe('Graph MIME: internationalised addresses (RFC 6532)', () => {
  it('compares UTF-8 header addresses with the envelope and writes a UTF-8 Bcc, every other byte kept', () => {
    const header = Buffer.from('From: a@x\r\nTo: jürgen@example.org\r\nSubject: ä\r\n\r\nbody\r\n', 'utf8');
    const p = prepareMime(header, ['jürgen@example.org', 'zoë@example.net']);
    assert.ok(p.ok);
    assert.equal(p.mime.toString('utf8'), 'From: a@x\r\nTo: jürgen@example.org\r\nSubject: ä\r\nBcc: zoë@example.net\r\n\r\nbody\r\n');
  });
});
