import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { CommandLookahead } from '../../../src/smtp/command-lookahead.js';

describe('CommandLookahead', () => {
  it('sees the command pipelined behind the one being handled, across chunks and line ends', () => {
    const l = new CommandLookahead();
    l.received('MAIL FROM:<a@x>\r\nRCPT TO:<b@y>\r\nDA');
    l.dispatched('MAIL FROM:<a@x>');
    assert.equal(l.next(), 'RCPT TO:<b@y>');
    l.dispatched('RCPT TO:<b@y>');
    assert.equal(l.next(), null, 'half a line is not a command yet');
    l.received('TA\n');
    assert.equal(l.next(), 'DATA', 'a bare LF ends a line, as smtp-server reads it');
  });

  it('knows nothing while the parser reads a message, and again from what follows it', () => {
    const l = new CommandLookahead();
    l.received('DATA\r\nSubject: x\r\n');
    l.dispatched('DATA');
    l.forget(); // the parser reads the body 'Subject: x\r\nRCPT TO:<not a command>\r\n'
    assert.equal(l.next(), null, 'the body is not commands');
    l.received('QUIT\r\n'); // smtp-server hands back what followed the final "."
    assert.equal(l.next(), 'QUIT');
  });

  it('a line handed out that is not what it holds first: it trusts nothing it holds', () => {
    const l = new CommandLookahead();
    l.received('RCPT TO:<b@y>\r\nDATA\r\n');
    l.dispatched('RSET');
    assert.equal(l.next(), null);
    l.received('DATA\r\n');
    l.dispatched('RCPT TO:<b@y>'); // not what it holds now: still nothing
    assert.equal(l.next(), null);
  });

  it('stops looking past 64 KiB of commands not yet handled', () => {
    const l = new CommandLookahead();
    l.received('NOOP\r\n'.repeat(10_000));
    assert.equal(l.next(), 'NOOP');
    l.received('NOOP\r\n'.repeat(10_000));
    assert.equal(l.next(), null);
  });
});
