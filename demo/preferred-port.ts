import { createServer } from 'node:net';

/**
 * `port` when nothing listens on it at 127.0.0.1 (the demo's fixed ports keep the printed commands the same from
 * one run to the next), otherwise 0: the listener then takes any free port, and the demo prints the one it got.
 */
export function preferredPort(port: number): Promise<number> {
  return new Promise((resolve) => {
    const probe = createServer();
    probe.once('error', () => resolve(0));
    probe.listen(port, '127.0.0.1', () => probe.close(() => resolve(port)));
  });
}

/** Any free port at 127.0.0.1 now (for a URL that must be known before its server starts: the portal's). */
export function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const probe = createServer();
    probe.once('error', reject);
    probe.listen(0, '127.0.0.1', () => {
      const address = probe.address();
      probe.close(() => resolve(typeof address === 'object' && address !== null ? address.port : 0));
    });
  });
}
