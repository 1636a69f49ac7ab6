import assert from 'node:assert/strict';
import { once } from 'node:events';
import { connect, type AddressInfo, type Socket } from 'node:net';
import { afterEach, describe, it, mock } from 'node:test';
import { SMTPServer, type SMTPServerOptions } from 'smtp-server';
import { PromptSmtpServer } from '../../../src/smtp/prompt-smtp-server.js';

/** The first line the server sends, or null if none came within `turns` turns of the event loop. */
async function firstLine(socket: Socket, turns: number): Promise<string | null> {
  let text = '';
  socket.on('data', (chunk: Buffer) => (text += chunk.toString('latin1')));
  for (let i = 0; i < turns && !text.includes('\r\n'); i++) await new Promise((r) => setImmediate(r));
  return text.includes('\r\n') ? text.slice(0, text.indexOf('\r\n')) : null;
}

async function open(server: SMTPServer): Promise<Socket> {
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const socket = connect((server.server.address() as AddressInfo).port, '127.0.0.1');
  await once(socket, 'connect');
  return socket;
}

describe('PromptSmtpServer', () => {
  const servers: SMTPServer[] = [];
  const sockets: Socket[] = [];
  afterEach(async () => {
    mock.timers.reset();
    for (const s of sockets.splice(0)) s.destroy();
    await Promise.all(servers.splice(0).map((s) => new Promise((r) => s.close(() => r(undefined)))));
  });

  // With setTimeout frozen (node:test mock timers), a greeting that waits on a timer never comes; sockets are real.
  const options: SMTPServerOptions = { name: 'test', banner: 'ready', disabledCommands: ['STARTTLS'], authOptional: true, disableReverseLookup: true, logger: false };

  it('greets without waiting on a timer', async () => {
    mock.timers.enable({ apis: ['setTimeout'] });
    const server = new PromptSmtpServer(options);
    servers.push(server);
    const socket = await open(server);
    sockets.push(socket);
    assert.match((await firstLine(socket, 200)) ?? 'no greeting', /^220 test ESMTP ready$/);
  });

  it('(smtp-server itself holds the greeting on a 100 ms timer, which this replaces)', async () => {
    mock.timers.enable({ apis: ['setTimeout'] });
    const server = new SMTPServer(options);
    servers.push(server);
    const socket = await open(server);
    sockets.push(socket);
    assert.equal(await firstLine(socket, 200), null);
    mock.timers.tick(100);
    assert.match((await firstLine(socket, 200)) ?? 'no greeting', /^220 /);
  });

  it('still serves a whole session', async () => {
    const received: string[] = [];
    const server = new PromptSmtpServer({
      ...options,
      onData(stream, _session, callback) {
        let body = '';
        stream.on('data', (c: Buffer) => (body += c.toString()));
        stream.on('end', () => {
          received.push(body);
          callback();
        });
      },
    });
    servers.push(server);
    const socket = await open(server);
    sockets.push(socket);
    const lines: string[] = [];
    let buffer = '';
    const waiters: (() => void)[] = [];
    socket.on('data', (chunk: Buffer) => {
      buffer += chunk.toString();
      let i: number;
      while ((i = buffer.indexOf('\r\n')) >= 0) {
        lines.push(buffer.slice(0, i));
        buffer = buffer.slice(i + 2);
        waiters.shift()?.();
      }
    });
    const reply = async (code: string) => {
      for (;;) {
        const done = lines.findIndex((l) => l.startsWith(`${code} `));
        if (done >= 0) return lines.splice(0, done + 1);
        await new Promise<void>((r) => waiters.push(r));
      }
    };
    await reply('220');
    for (const [line, code] of [['EHLO client', '250'], ['MAIL FROM:<a@b.example>', '250'], ['RCPT TO:<c@d.example>', '250'], ['DATA', '354']] as const) {
      socket.write(`${line}\r\n`);
      await reply(code);
    }
    socket.write('Subject: hi\r\n\r\nhello\r\n.\r\n');
    await reply('250');
    assert.deepEqual(received, ['Subject: hi\r\n\r\nhello\r\n']);
  });
});
