import assert from 'node:assert/strict';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import type { TLSSocket } from 'node:tls';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { generateSelfSignedCertificate } from '../../src/tls/self-signed-certificate.js';
import { BDAT_CHUNK_BYTES } from '../../src/upstream/smtp/upstream-smtp-session.js';
import { startSmtpHarness, type SmtpHarness } from '../helpers/smtp-harness.js';
import { ScriptedSmtpUpstream, type ScriptedUpstreamOptions } from '../helpers/scripted-smtp-upstream.js';
import { dotStuff, SmtpTranscript } from '../helpers/smtp-transcript.js';

/**
 * Issue 22 on the wire, against a scripted upstream whose replies the test controls: the body goes out with BDAT
 * (RFC 3030) when the upstream offers CHUNKING, unchanged and in one write with its BDAT line; a refused chunk is the
 * client's final reply; a client that breaks off mid-message gets nothing delivered; without CHUNKING the client has
 * its 354 while the upstream still holds its own; replies to a pipelined group reach the client in one write.
 */

/** 8-bit lines (every byte but NUL, CR, LF: passgate refuses those, SMTP smuggling), some starting with ".". */
function eightBitBody(lines: number): Buffer {
  const parts: Buffer[] = [Buffer.from('Subject: 8bit\r\nContent-Transfer-Encoding: 8bit\r\n\r\n')];
  const bytes = Array.from({ length: 256 }, (_, i) => i).filter((b) => b !== 0 && b !== 0x0a && b !== 0x0d);
  for (let i = 0; i < lines; i++) {
    const line = Buffer.from(bytes.slice(i % 7, (i % 7) + 70).map((b, j) => (j === 0 && i % 3 === 0 ? 0x2e : b)));
    parts.push(line, Buffer.from('\r\n'));
  }
  parts.push(Buffer.from('.\r\n..\r\n. \r\nend\r\n'));
  return Buffer.concat(parts);
}

async function world(options: Omit<ScriptedUpstreamOptions, 'tls'>) {
  const pair = await generateSelfSignedCertificate({ commonName: 'scripted.test', dnsNames: ['scripted.test'], ipAddresses: ['127.0.0.1'] });
  const upstream = await new ScriptedSmtpUpstream({ tls: pair, ...options }).start();
  const certDir = mkdtempSync(join(tmpdir(), 'passgate-scripted-ca-'));
  writeFileSync(join(certDir, 'ca.pem'), pair.cert);
  const h = await startSmtpHarness({ upstream: { port: upstream.port, tls: 'implicit', ca_file: join(certDir, 'ca.pem'), servername: 'scripted.test' } });
  return {
    upstream,
    h,
    close: async () => {
      await h.close();
      await upstream.stop();
      rmSync(certDir, { recursive: true, force: true });
    },
  };
}

/** MAIL, RCPT and DATA one by one, then the body (dot-stuffed here, as a client does) and its final reply. */
async function sendMessage(h: SmtpHarness, body: Buffer): Promise<string> {
  return SmtpTranscript.sendMessage(h.ports.submissions!, h.user, h.password, body);
}

describe('BDAT to an upstream with CHUNKING and PIPELINING', () => {
  let w: Awaited<ReturnType<typeof world>>;
  /** Chunk index → the upstream's reply to it, for the test that refuses one. */
  const refuse = new Map<number, string>();

  before(async () => {
    w = await world({ chunking: true, bdatReply: (chunk) => refuse.get(chunk) });
  });
  after(() => w?.close());

  it('sends an 8-bit body unchanged as one BDAT n LAST, in one write with its BDAT line, no DATA and no dot-stuffing', async () => {
    const body = eightBitBody(200);
    const chunksBefore = w.upstream.chunks.length;
    const reply = await sendMessage(w.h, body);
    assert.match(reply, /^250 2\.0\.0 queued as SCRIPTED/);
    assert.deepEqual(Buffer.from(w.upstream.messages.at(-1)!, 'latin1'), body, 'the upstream received the bytes the client meant');
    assert.deepEqual(w.upstream.chunks.slice(chunksBefore).map((c) => [c.size, c.last]), [[body.length, true]]);
    const connection = w.upstream.lines.at(-1)!.connection;
    const verbs = w.upstream.lines.filter((l) => l.connection === connection).map((l) => l.line.split(/[ :]/)[0]);
    assert.ok(!verbs.includes('DATA'), `no DATA upstream: ${verbs.join(' ')}`);
    const bdatRead = w.upstream.reads.get(connection)!.find((r) => r.startsWith('BDAT '));
    assert.ok(bdatRead, 'a read starts with the BDAT line');
    assert.ok(bdatRead.length >= `BDAT ${body.length} LAST\r\n`.length + body.length, 'the chunk came in the same write as its BDAT line');
  });

  it(`sends a body over ${BDAT_CHUNK_BYTES} bytes in chunks, the last one LAST, and it arrives whole`, async () => {
    const body = eightBitBody(Math.ceil((BDAT_CHUNK_BYTES * 2.5) / 72));
    const chunksBefore = w.upstream.chunks.length;
    const reply = await sendMessage(w.h, body);
    assert.match(reply, /^250 /);
    assert.deepEqual(Buffer.from(w.upstream.messages.at(-1)!, 'latin1'), body);
    const chunks = w.upstream.chunks.slice(chunksBefore);
    assert.ok(chunks.length >= 3, `${chunks.length} chunks`);
    assert.deepEqual(chunks.map((c) => c.last), [...chunks.slice(1).map(() => false), true]);
    assert.equal(chunks.reduce((n, c) => n + c.size, 0), body.length);
  });

  it('gives the client the upstream refusal of the LAST chunk as its final reply', async () => {
    refuse.set(0, '554 5.6.0 Message refused by scripted policy');
    try {
      const delivered = w.upstream.messages.length;
      const reply = await sendMessage(w.h, eightBitBody(10));
      assert.match(reply, /^554 5\.6\.0 Message refused by scripted policy/);
      assert.equal(w.upstream.messages.length, delivered);
    } finally {
      refuse.clear();
    }
  });

  it('stops at a refused chunk in the middle and gives that refusal: no LAST goes out', async () => {
    refuse.set(0, '452 4.3.1 Insufficient system storage');
    try {
      const chunksBefore = w.upstream.chunks.length;
      const delivered = w.upstream.messages.length;
      const reply = await sendMessage(w.h, eightBitBody(Math.ceil((BDAT_CHUNK_BYTES * 3) / 72)));
      assert.match(reply, /^452 4\.3\.1 Insufficient system storage/);
      assert.equal(w.upstream.messages.length, delivered);
      assert.ok(!w.upstream.chunks.slice(chunksBefore).some((c) => c.last), 'no LAST chunk after the refusal');
    } finally {
      refuse.clear();
    }
  });

  it('a NUL after the first chunk went out: 554 5.6.0 to the client, no LAST upstream, nothing delivered', async () => {
    const chunksBefore = w.upstream.chunks.length;
    const delivered = w.upstream.messages.length;
    const body = Buffer.concat([eightBitBody(Math.ceil((BDAT_CHUNK_BYTES * 1.2) / 72)), Buffer.from('a NUL \0 here\r\n')]);
    const reply = await sendMessage(w.h, body);
    assert.match(reply, /^554 5\.6\.0 Message contains NUL characters/);
    assert.equal(w.upstream.messages.length, delivered, 'nothing delivered');
    // The first chunk went out before the NUL arrived (whether all of it reached the upstream before passgate closed
    // the connection is a race); no LAST did.
    assert.ok(!w.upstream.chunks.slice(chunksBefore).some((c) => c.last), 'no LAST chunk');
  });

  it('delivers nothing when the client breaks off in the middle of the message', async () => {
    const chunksBefore = w.upstream.chunks.length;
    const delivered = w.upstream.messages.length;
    const t = await SmtpTranscript.loggedIn(w.h.ports.submissions!, w.h.user, w.h.password);
    t.send(`MAIL FROM:<${w.h.user}>`);
    await t.expect(/^250 /);
    t.send('RCPT TO:<someone@example.net>');
    await t.expect(/^250 /);
    t.send('DATA');
    await t.expect(/^354 /);
    // More than one chunk: the first goes upstream (not LAST) while the client is still sending.
    t.write(dotStuff(eightBitBody(Math.ceil((BDAT_CHUNK_BYTES * 1.5) / 72))));
    await w.upstream.until(() => w.upstream.chunks.length > chunksBefore);
    t.close();
    await w.upstream.until(() => w.upstream.closed.has(w.upstream.chunks.at(-1)!.connection));
    assert.deepEqual(w.upstream.chunks.slice(chunksBefore).map((c) => c.last), [false]);
    assert.equal(w.upstream.messages.length, delivered, 'nothing delivered');
  });
});

describe('BDAT: the upstream cuts the connection in the middle of a chunk', () => {
  let w: Awaited<ReturnType<typeof world>>;
  before(async () => {
    w = await world({ chunking: true, cutInBdatAfter: BDAT_CHUNK_BYTES / 2 });
  });
  after(() => w?.close());

  it('the upstream cuts the connection in the middle of a chunk: 451 to the client, nothing delivered', async () => {
    const reply = await sendMessage(w.h, eightBitBody(Math.ceil((BDAT_CHUNK_BYTES * 1.5) / 72)));
    assert.match(reply, /^451 4\.4\.2 /);
    assert.equal(w.upstream.messages.length, 0);
  });
});

describe('DATA to an upstream without CHUNKING: 354 at once', () => {
  let w: Awaited<ReturnType<typeof world>>;
  before(async () => {
    w = await world({ holdData: true, reply: (verb) => (verb === 'DATA' && refuseData ? '554 5.3.4 No DATA today' : undefined) });
  });
  after(() => w?.close());
  let refuseData = false;

  it('answers the client 354 and takes its body while the upstream still holds its 354, then delivers it', async () => {
    const t = await SmtpTranscript.loggedIn(w.h.ports.submissions!, w.h.user, w.h.password);
    try {
      t.send(`MAIL FROM:<${w.h.user}>`);
      await t.expect(/^250 /);
      t.send('RCPT TO:<someone@example.net>');
      await t.expect(/^250 /);
      const upstreamData = w.upstream.dataReceived();
      t.send('DATA');
      await t.expect(/^354 /);
      await upstreamData; // the upstream has DATA and holds its 354
      t.write('Subject: early\r\n\r\n..dotted\r\nbody\r\n.\r\n');
      w.upstream.releaseData();
      assert.match(await t.expect(/^\d{3} /), /^250 2\.0\.0 queued as SCRIPTED/);
      assert.equal(w.upstream.messages.at(-1), 'Subject: early\r\n\r\n..dotted\r\nbody\r\n');
    } finally {
      t.close();
    }
  });

  it("gives the upstream's refusal of DATA to the client's final dot", async () => {
    refuseData = true;
    try {
      const reply = await sendMessage(w.h, Buffer.from('Subject: refused\r\n\r\nbody\r\n'));
      assert.match(reply, /^554 5\.3\.4 No DATA today/);
    } finally {
      refuseData = false;
    }
  });
});

describe('replies to a pipelined group reach the client in one write', () => {
  let w: Awaited<ReturnType<typeof world>>;
  before(async () => {
    w = await world({ chunking: true });
  });
  after(() => w?.close());

  it("RCPT's 250 and DATA's 354 arrive together, the final 250 and QUIT's 221 too", async () => {
    const t = await SmtpTranscript.loggedIn(w.h.ports.submissions!, w.h.user, w.h.password);
    const reads: string[] = [];
    (t as unknown as { socket: TLSSocket }).socket.on('data', (chunk: Buffer) => reads.push(chunk.toString('latin1')));
    try {
      t.write(`MAIL FROM:<${w.h.user}>\r\nRCPT TO:<someone@example.net>\r\nDATA\r\n`);
      await t.expect(/^250 /);
      await t.expect(/^250 /);
      await t.expect(/^354 /);
      t.write('Subject: pipelined\r\n\r\nhello\r\n.\r\nQUIT\r\n');
      await t.expect(/^250 /);
      await t.expect(/^221 /);
      assert.ok(reads.some((r) => /^250 [^\r]*\r\n354 /m.test(r)), `RCPT's 250 and the 354 in one read: ${JSON.stringify(reads)}`);
      assert.ok(reads.some((r) => /^250 [^\r]*\r\n221 /m.test(r)), `the final 250 and the 221 in one read: ${JSON.stringify(reads)}`);
    } finally {
      t.close();
    }
  });
});

describe('DATA ahead: a pipelining client, an upstream with PIPELINING and without CHUNKING', () => {
  let w: Awaited<ReturnType<typeof world>>;
  /** Recipients the upstream refuses (a lax upstream: it still answers a later DATA with 354). */
  const refused = new Set<string>();
  before(async () => {
    w = await world({ reply: (verb, line) => (verb === 'RCPT' && [...refused].some((r) => line.includes(r)) ? '550 5.1.1 no such user' : undefined) });
  });
  after(() => w?.close());

  /** The upstream connection of the last command line it received, and its reads (what passgate wrote together). */
  const lastConnection = () => {
    const connection = w.upstream.lines.at(-1)!.connection;
    return { connection, reads: w.upstream.reads.get(connection)! };
  };

  it('sends DATA in the same write as the last RCPT, so the 354 comes back with its reply, and delivers the body', async () => {
    const t = await SmtpTranscript.loggedIn(w.h.ports.submissions!, w.h.user, w.h.password);
    try {
      t.write(`MAIL FROM:<${w.h.user}>\r\nRCPT TO:<a@example.net>\r\nRCPT TO:<b@example.net>\r\nDATA\r\n`);
      await t.expect(/^250 /);
      await t.expect(/^250 /);
      await t.expect(/^250 /);
      await t.expect(/^354 /);
      t.write('Subject: ahead\r\n\r\n..dotted\r\nbody\r\n.\r\n');
      assert.match(await t.expect(/^\d{3} /), /^250 2\.0\.0 queued as SCRIPTED/);
      assert.equal(w.upstream.messages.at(-1), 'Subject: ahead\r\n\r\n..dotted\r\nbody\r\n');
      const { reads } = lastConnection();
      assert.ok(reads.some((r) => /RCPT TO:<b@example\.net>\r\nDATA\r\n$/.test(r)), `the last RCPT and DATA in one read: ${JSON.stringify(reads)}`);
      assert.ok(!reads.some((r) => /RCPT TO:<a@example\.net>\r\nDATA/.test(r)), 'no DATA behind a RCPT that was not the last');
    } finally {
      t.close();
    }
  });

  it('a client that waits for each reply: DATA goes upstream when the client sends it, not before', async () => {
    const reply = await sendMessage(w.h, Buffer.from('Subject: one by one\r\n\r\nbody\r\n'));
    assert.match(reply, /^250 2\.0\.0 queued as SCRIPTED/);
    const { reads } = lastConnection();
    assert.ok(reads.some((r) => r === 'DATA\r\n'), `DATA in a read of its own: ${JSON.stringify(reads)}`);
  });

  it('the only RCPT refused while the upstream took DATA with 354: the refusal, 503 to DATA, that upstream session closed unused, and the next message goes', async () => {
    refused.add('gone@example.net');
    const messagesBefore = w.upstream.messages.length;
    const t = await SmtpTranscript.loggedIn(w.h.ports.submissions!, w.h.user, w.h.password);
    try {
      t.write(`MAIL FROM:<${w.h.user}>\r\nRCPT TO:<gone@example.net>\r\nDATA\r\n`);
      await t.expect(/^250 /);
      assert.match(await t.expect(/^\d{3} /), /^550 5\.1\.1 no such user/);
      assert.match(await t.expect(/^\d{3} /), /^503 /); // smtp-server: no recipients
      const first = lastConnection().connection;
      assert.ok(lastConnection().reads.some((r) => /RCPT TO:<gone@example\.net>\r\nDATA\r\n$/.test(r)), `DATA went ahead: ${JSON.stringify(lastConnection().reads)}`);
      t.send('RSET'); // the client's transaction is still open at passgate (MAIL was accepted)
      await t.expect(/^250 /);
      t.send(`MAIL FROM:<${w.h.user}>`);
      await t.expect(/^250 /);
      t.send('RCPT TO:<here@example.net>');
      await t.expect(/^250 /);
      t.send('DATA');
      await t.expect(/^354 /);
      t.write('Subject: second\r\n\r\nbody\r\n.\r\n');
      assert.match(await t.expect(/^\d{3} /), /^250 2\.0\.0 queued as SCRIPTED/);
      assert.deepEqual(w.upstream.messages.slice(messagesBefore), ['Subject: second\r\n\r\nbody\r\n'], 'only the second message, and no command taken as message text');
      await w.upstream.until(() => w.upstream.closed.has(first));
      assert.notEqual(lastConnection().connection, first, 'the second message went on another upstream session');
      assert.ok(w.upstream.received.get(first)!.endsWith('DATA\r\n'), 'nothing went to the first session after its DATA (no RSET or MAIL as message text)');
    } finally {
      refused.delete('gone@example.net');
      t.close();
    }
  });

  it('"DATA" followed by a tab is not DATA (smtp-server answers 500): nothing goes ahead', async () => {
    const linesBefore = w.upstream.lines.length;
    const t = await SmtpTranscript.loggedIn(w.h.ports.submissions!, w.h.user, w.h.password);
    try {
      t.write(`MAIL FROM:<${w.h.user}>\r\nRCPT TO:<someone@example.net>\r\nDATA\t\r\n`);
      await t.expect(/^250 /);
      await t.expect(/^250 /);
      assert.match(await t.expect(/^\d{3} /), /^500 /);
      const sent = w.upstream.lines.slice(linesBefore).map((l) => l.line);
      assert.ok(sent.some((l) => l.startsWith('RCPT TO:<someone@example.net>')), `the RCPT went upstream: ${JSON.stringify(sent)}`);
      assert.ok(!sent.some((l) => /^DATA/i.test(l)), `no DATA upstream: ${JSON.stringify(sent)}`);
    } finally {
      t.close();
    }
  });

  it('a client that leaves after DATA went ahead: the upstream session is closed without a final ".", nothing delivered', async () => {
    const messagesBefore = w.upstream.messages.length;
    const t = await SmtpTranscript.loggedIn(w.h.ports.submissions!, w.h.user, w.h.password);
    t.write(`MAIL FROM:<${w.h.user}>\r\nRCPT TO:<someone@example.net>\r\nDATA\r\n`);
    await t.expect(/^250 /);
    await t.expect(/^250 /);
    await t.expect(/^354 /);
    const { connection } = lastConnection();
    t.write('Subject: never finished\r\n\r\nhalf a body\r\n');
    t.close();
    await w.upstream.until(() => w.upstream.closed.has(connection));
    assert.equal(w.upstream.messages.length, messagesBefore);
  });
});
