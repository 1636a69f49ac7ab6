/**
 * Control characters shown as \xNN: usernames and details in the audit log come from clients, and an ESC or OSC
 * sequence printed raw would drive the operator's terminal.
 */
export function printable(text: string): string {
  return text.replace(/\p{Cc}/gu, (c) => `\\x${c.charCodeAt(0).toString(16).padStart(2, '0')}`);
}

/** Plain-text tables and times for the CLI: aligned columns, ISO-like UTC times, "3h ago" ages. */
export function formatTable(header: string[], rawRows: string[][]): string {
  const rows = rawRows.map((row) => row.map(printable));
  const widths = header.map((h, i) => Math.max(h.length, ...rows.map((r) => (r[i] ?? '').length)));
  const line = (cells: string[]) =>
    cells
      .map((c, i) => (i === cells.length - 1 ? c : c.padEnd(widths[i]!)))
      .join('  ')
      .trimEnd();
  return [line(header), ...rows.map(line)].join('\n') + '\n';
}

/** `2026-12-04 09:00Z`, or with `seconds` `2026-12-04 09:00:27Z` (the audit log and the message trace). */
export function formatTime(ms: number | null, seconds = false): string {
  if (ms === null) return '-';
  return new Date(ms).toISOString().replace('T', ' ').slice(0, seconds ? 19 : 16) + 'Z';
}

export function formatAge(ms: number | null, now: number): string {
  if (ms === null) return 'never';
  const seconds = Math.round((now - ms) / 1000);
  if (seconds < 60) return `${Math.max(seconds, 0)}s ago`;
  if (seconds < 3600) return `${Math.floor(seconds / 60)}m ago`;
  if (seconds < 86400) return `${Math.floor(seconds / 3600)}h ago`;
  return `${Math.floor(seconds / 86400)}d ago`;
}
