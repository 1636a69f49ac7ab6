import { once } from 'node:events';
import { createServer } from 'node:net';

/**
 * `port` when nothing listens on it at 127.0.0.1 (the demo's fixed ports keep the printed commands the same from
 * one run to the next), otherwise 0: the listener then takes any free port, and the demo prints the one it got.
 */
export async function preferredPort(port: number): Promise<number> {
  const probe = createServer();
  probe.on('error', () => {});
  probe.listen(port, '127.0.0.1');
  const [outcome] = await Promise.race([once(probe, 'listening').then(() => ['free']), once(probe, 'error').then(() => ['taken'])]);
  if (outcome !== 'free') return 0;
  probe.close();
  await once(probe, 'close');
  return port;
}
