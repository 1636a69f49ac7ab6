/**
 * An SMTP or IMAP harness (passgate with its upstreams) in a process of its own, for tests that measure the
 * gateway's memory: the clients stay in the test's process, so their sockets and buffers are not counted.
 * Argument: JSON {protocol, over}. Sends {ports} when ready; answers 'retained' with the heap plus Buffer memory
 * after a full collection (node runs with --expose-gc); 'close' closes the harness and exits.
 */
import { startImapHarness } from './imap-harness.js';
import { startSmtpHarness } from './smtp-harness.js';

const { protocol, over } = JSON.parse(process.argv[2]!) as { protocol: 'smtp' | 'imap'; over: Record<string, Record<string, unknown>> };
const harness = protocol === 'smtp' ? await startSmtpHarness(over) : await startImapHarness(over);
const gc = (globalThis as { gc?: () => void }).gc!;

process.on('message', (message: string) => {
  if (message === 'retained') {
    gc();
    gc();
    const { heapUsed, arrayBuffers } = process.memoryUsage();
    process.send!({ retained: heapUsed + arrayBuffers });
  }
  if (message === 'close') void harness.close().finally(() => process.exit(0));
});
process.on('disconnect', () => void harness.close().finally(() => process.exit(0)));
process.send!({ ports: harness.ports });
