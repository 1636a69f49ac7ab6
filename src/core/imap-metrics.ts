/** Port: what the IMAP gateway counts. observability/metrics.ts implements it. */
export interface ImapMetrics {
  bytes(direction: 'client-to-upstream' | 'upstream-to-client', bytes: number): void;
  sessionOpened(): void;
  sessionClosed(reason: string): void;
}
