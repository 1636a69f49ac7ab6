import assert from 'node:assert/strict';
import { once } from 'node:events';
import type { AddressInfo } from 'node:net';
import { after, before, describe, it } from 'node:test';
import { createServer, type Server, type TLSSocket } from 'node:tls';
import { UpstreamError } from '../../src/core/ports/upstream-failure.js';
import { generateSelfSignedCertificate } from '../../src/tls/self-signed-certificate.js';
import { loginUpstreamPop3 } from '../../src/upstream/pop3/pop3-mailbox-upstream.js';

/**
 * The POP3 upstream login against a scripted server that answers as Exchange Online does (Microsoft Learn,
 * "Authenticate an IMAP, POP or SMTP connection using OAuth"): `AUTH XOAUTH2`, an empty `+ ` continuation, the
 * response on its own line, then `+OK` or `-ERR Authentication failure: unknown user name or bad password.`. A real
 * access token is far longer than RFC 5034's 255-octet command line, so this is the path every real login takes
 * (Dovecot's tests use short tokens, which ride on the AUTH line).
 */
describe('POP3 upstream login (scripted Exchange-like server, real TLS)', () => {
  let server: Server;
  let ca: string;
  let script: (line: string, socket: TLSSocket, seen: string[]) => void;
  const seen: string[] = [];
  const longToken = `eyJ0eXAiOiJKV1Qi.${'x'.repeat(1500)}.sig`;

  before(async () => {
    const pair = await generateSelfSignedCertificate({ commonName: 'localhost', dnsNames: ['localhost'], ipAddresses: ['127.0.0.1'] });
    ca = pair.cert;
    server = createServer({ key: pair.key, cert: pair.cert }, (socket) => {
      socket.write('+OK The Microsoft Exchange POP3 service is ready. [UABBADcA]\r\n');
      let buffer = '';
      socket.on('data', (chunk: Buffer) => {
        buffer += chunk.toString('latin1');
        for (let end = buffer.indexOf('\r\n'); end >= 0; end = buffer.indexOf('\r\n')) {
          const line = buffer.slice(0, end);
          buffer = buffer.slice(end + 2);
          seen.push(line);
          script(line, socket, seen);
        }
      });
      socket.on('error', () => {});
    });
    server.listen(0, '127.0.0.1');
    await once(server, 'listening');
  });
  after(() => new Promise<void>((r) => server.close(() => r())));

  const login = (token = longToken) =>
    loginUpstreamPop3(
      { host: '127.0.0.1', port: (server.address() as AddressInfo).port, tls: 'implicit', ca, servername: 'localhost', timeoutMs: 5000 },
      'scanner@contoso.com',
      token,
    );
  const expected = (token: string) => Buffer.from(`user=scanner@contoso.com\x01auth=Bearer ${token}\x01\x01`).toString('base64');

  it('sends AUTH XOAUTH2, then the response after the empty continuation, and hands over the socket after +OK', async () => {
    seen.length = 0;
    script = (line, socket) => {
      if (line === 'AUTH XOAUTH2') socket.write('+ \r\n');
      else if (line === expected(longToken)) socket.write('+OK User successfully authenticated.\r\n');
      else if (line === 'STAT') socket.write('+OK 2 1234\r\n');
    };
    const session = await login();
    assert.deepEqual(seen, ['AUTH XOAUTH2', expected(longToken)]);
    session.socket.write('STAT\r\n');
    const [reply] = (await once(session.socket, 'data')) as [Buffer];
    assert.equal(reply.toString(), '+OK 2 1234\r\n');
    session.socket.destroy();
  });

  it('puts a short response on the AUTH line (RFC 5034 §4: within 255 octets)', async () => {
    seen.length = 0;
    script = (line, socket) => {
      if (line.startsWith('AUTH XOAUTH2 ')) socket.write('+OK\r\n');
    };
    const session = await login('short');
    assert.deepEqual(seen, [`AUTH XOAUTH2 ${expected('short')}`]);
    session.socket.destroy();
  });

  it('Exchange\'s refusal is login-refused with its text; the error challenge is answered with an empty line', async () => {
    seen.length = 0;
    script = (line, socket, lines) => {
      if (line === 'AUTH XOAUTH2') socket.write('+ \r\n');
      else if (lines.length === 2) socket.write(`+ ${Buffer.from('{"status":"401"}').toString('base64')}\r\n`);
      else if (line === '') socket.write('-ERR Authentication failure: unknown user name or bad password.\r\n');
    };
    await assert.rejects(login(), (error: unknown) => {
      assert.ok(error instanceof UpstreamError);
      assert.equal(error.kind, 'login-refused');
      assert.deepEqual(error.reply?.lines, ['-ERR Authentication failure: unknown user name or bad password.']);
      return true;
    });
    assert.deepEqual(seen.slice(-1), ['']);
  });

  it('[IN-USE] is busy and [SYS/TEMP] is login-deferred (both temporary)', async () => {
    for (const [answer, kind] of [
      ['-ERR [IN-USE] Mailbox is locked by another POP3 session.', 'busy'],
      ['-ERR [SYS/TEMP] Try again later.', 'login-deferred'],
    ] as const) {
      script = (line, socket) => {
        if (line === 'AUTH XOAUTH2') socket.write('+ \r\n');
        else socket.write(`${answer}\r\n`);
      };
      await assert.rejects(login(), (error: unknown) => error instanceof UpstreamError && error.kind === kind && error.temporary);
    }
  });
});
