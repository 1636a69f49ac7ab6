import assert from 'node:assert/strict';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { describe, it } from 'node:test';
import { ESLint } from 'eslint';

const ROOT = join(dirname(fileURLToPath(import.meta.url)), '../../..');
const eslint = new ESLint({ cwd: ROOT });

/** The dependency-picture and import-restriction messages for `code` as if it were the file `path` of src/. */
async function problems(path: string, code: string): Promise<string[]> {
  const [result] = await eslint.lintText(code, { filePath: join(ROOT, path) });
  return result!.messages.filter((m) => m.ruleId === 'passgate/dependency-picture' || m.ruleId === 'no-restricted-imports').map((m) => m.message);
}

describe('the dependency picture of docs/ARCHITECTURE.md, enforced by npm run lint', () => {
  it('an edge never imports another edge or an upstream implementation: upstreams arrive as ports', async () => {
    assert.match((await problems('src/smtp/x.ts', "export { ImapSession } from '../imap/imap-session.js';\n"))[0] ?? '', /src\/smtp may not import src\/imap/);
    assert.match((await problems('src/imap/x.ts', "import { ImapMailboxUpstream } from '../upstream/imap/upstream-imap-login.js';\nexport const u = ImapMailboxUpstream;\n"))[0] ?? '', /src\/imap may not import src\/upstream/);
    assert.deepEqual(await problems('src/smtp/x.ts', "import type { SubmissionUpstream } from '../core/ports/submission-upstream.js';\nexport type U = SubmissionUpstream;\n"), []);
  });

  it('adapters import only what the page allows', async () => {
    assert.match((await problems('src/admin/x.ts', "import type { TokenCipher } from '../oauth/token-cipher.js';\nexport type C = TokenCipher;\n"))[0] ?? '', /src\/admin may not import src\/oauth/);
    assert.match((await problems('src/rate-limit/x.ts', "import { SqliteAuditLog } from '../credentials/sqlite-audit-log.js';\nexport const a = SqliteAuditLog;\n"))[0] ?? '', /may not import src\/credentials/);
    assert.deepEqual(await problems('src/rate-limit/x.ts', "import type { RedisClient } from '../redis/redis-client-factory.js';\nexport type R = RedisClient;\n"), []);
  });

  it('core/ and its ports import nothing else from src/ and no I/O (types of streams and sockets only)', async () => {
    assert.deepEqual(await problems('src/core/ports/x.ts', "import { GatewayError } from '../gateway-error.js';\nimport type { Socket } from 'node:net';\nexport const e = GatewayError;\nexport type S = Socket;\n"), []);
    assert.match((await problems('src/core/ports/x.ts', "import { OAuthClient } from '../../oauth/oauth-client.js';\nexport const o = OAuthClient;\n"))[0] ?? '', /src\/core may not import src\/oauth/);
    assert.equal((await problems('src/core/x.ts', "import { connect } from 'node:net';\nexport const c = connect;\n")).length, 1);
  });

  it('a room missing from the picture is an error, so a new one is placed in it on purpose', async () => {
    assert.match((await problems('src/elsewhere/x.ts', "import { GatewayError } from '../core/gateway-error.js';\nexport const e = GatewayError;\n"))[0] ?? '', /src\/elsewhere is not in the dependency picture/);
  });
});
