import type { ReadOutcome } from './imap-reader.js';

/**
 * A reader that timed out after login waited on Dovecot through passgate's pipe. If passgate's log shows a session
 * that the client closed after at least the wait, having carried exactly the bytes the client sent and received
 * after login, passgate passed on everything and the silence was the upstream's: an upstream stall, not a hang of
 * passgate's. Anything else stays a timeout.
 */
export function markUpstreamStalls(reads: ReadOutcome[], log: string, replyTimeoutMs: number): void {
  const ended = log
    .split('\n')
    .filter((line) => line.includes('"msg":"imap session ended"'))
    .map((line) => JSON.parse(line) as { reason: string; fromClient: number; fromUpstream: number; durationMs: number; used?: boolean });
  for (const read of reads) {
    if (read.result !== 'timeout' || !read.afterLogin) continue;
    const { sent, received } = read.afterLogin;
    const match = ended.find(
      (e) => !e.used && e.reason === 'client-closed' && e.fromClient === sent && e.fromUpstream === received && e.durationMs >= replyTimeoutMs - 1000,
    );
    if (match) {
      match.used = true;
      read.result = 'upstream-stall';
    }
  }
}
