import assert from 'node:assert/strict';
import { once } from 'node:events';
import { connect, createServer, type Socket } from 'node:net';
import { afterEach, describe, it, mock } from 'node:test';
import { spliceSockets, type SpliceEnd } from '../../../src/net/socket-splice.js';

/** Two connected TCP socket pairs on loopback: [client side, passgate's side of it], [passgate's upstream side, upstream]. */
async function socketPair(): Promise<[Socket, Socket]> {
  const server = createServer();
  server.listen(0, '127.0.0.1');
  await once(server, 'listening');
  const accepted = once(server, 'connection') as Promise<[Socket]>;
  const outer = connect((server.address() as { port: number }).port, '127.0.0.1');
  const [inner] = await accepted;
  await once(outer, 'connect');
  server.close();
  return [outer, inner];
}

// imap.idle_timeout_minutes (issue 21): a logged-in connection silent both ways this long is closed with the
// protocol's farewell; traffic either way keeps it open. The clock and the interval are frozen (mock timers); the
// sockets are real.
describe('the splice idle timeout', () => {
  afterEach(() => mock.timers.reset());

  it('closes a pipe silent both ways for the timeout, with the farewell, and not a moment before; traffic resets it', async () => {
    const [client, clientSide] = await socketPair();
    const [upstreamSide, upstream] = await socketPair();
    mock.timers.enable({ apis: ['setInterval', 'Date'], now: 1_000_000 });
    const ended: SpliceEnd[] = [];
    spliceSockets(clientSide, upstreamSide, { idleTimeoutMs: 35 * 60_000, idleFarewell: '* BYE idle\r\n', onEnd: (reason) => ended.push(reason) });

    mock.timers.tick(30 * 60_000);
    upstream.write('* 3 EXISTS\r\n'); // the upstream speaks: the pipe is not idle
    const [chunk] = (await once(client, 'data')) as [Buffer];
    assert.equal(chunk.toString(), '* 3 EXISTS\r\n');
    mock.timers.tick(34 * 60_000);
    assert.deepEqual(ended, [], '34 minutes after the last byte: still open');

    const farewell = once(client, 'data');
    mock.timers.tick(60_000 + 60_000); // past 35 minutes, and the next check of the interval
    assert.deepEqual(ended, ['idle']);
    assert.equal(((await farewell) as [Buffer])[0].toString(), '* BYE idle\r\n');
    client.destroy();
    upstream.destroy();
  });
});
