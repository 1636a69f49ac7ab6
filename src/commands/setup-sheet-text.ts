import type { SetupServer, SetupSheet } from '../core/setup-sheet.js';

function server(s: SetupServer): string {
  const how = s.tls === 'none' ? 'without encryption' : `with ${s.tls}`;
  return `port ${s.port} ${how}${s.note ? ` (${s.note})` : ''}`;
}

/** The setup sheet as lines for a terminal: per scope the host, ports and TLS modes, then the certificate note. */
export function setupSheetLines(sheet: SetupSheet): string[] {
  const lines = [`  username:  ${sheet.username}`, '  password:  the code above (spaces, dashes and capitals do not matter)'];
  for (const scope of sheet.scopes) {
    const label = `${scope.protocol.toUpperCase()}:`.padEnd(10);
    if (scope.servers.length === 0) {
      lines.push(`  ${label} ${scope.note ?? 'not available'}`);
      continue;
    }
    const auth = scope.protocol === 'smtp' ? ', authentication on' : '';
    lines.push(`  ${label} ${sheet.host}, ${scope.servers.map(server).join(' or ')}${auth}`);
  }
  lines.push(`  certificate: ${sheet.certificateNote}`);
  return lines;
}
