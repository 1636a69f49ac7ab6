import { createReadStream, createWriteStream } from 'node:fs';
import { createInterface } from 'node:readline';
import { Readable } from 'node:stream';
import { Command } from 'commander';
import { describeImport, exportStore, importStore, type Transferred } from '../admin/store-transfer.js';
import type { CliContext } from './cli-context.js';

export function storeCommand(ctx: CliContext): Command {
  const cmd = new Command('store').description('move app passwords and token state between stores (JSON lines; hashes and sealed tokens only)');
  const counts = (n: Transferred) => `${n.records} app passwords and ${n.tokens} token states`;

  cmd
    .command('export')
    .description('write every app password record (hashes, never passwords) and token state (tokens sealed, never in clear) as JSON lines')
    .option('--out <file>', 'write to this file (mode 0600) instead of stdout')
    .option('--no-tokens', 'leave token state out (app passwords only)')
    .action(async (opts: { out?: string; tokens: boolean }) => {
      await ctx.withApp(async (app) => {
        const tokenStates = opts.tokens ? app.tokenStates : null;
        if (opts.out === undefined) {
          const n = await exportStore(app.store, tokenStates, (line) => ctx.io.stdout(line));
          ctx.io.stderr(`exported ${counts(n)}\n`);
          return;
        }
        const file = createWriteStream(opts.out, { mode: 0o600, flags: 'wx' });
        const n = await exportStore(app.store, tokenStates, (line) => file.write(line));
        await new Promise<void>((resolve, reject) => file.end((err?: Error | null) => (err ? reject(err) : resolve())));
        ctx.io.stderr(`exported ${counts(n)} to ${opts.out}\n`);
      });
    });

  cmd
    .command('import')
    .description('read JSON lines from `store export` into the configured store (same id or token key: replaced; a password revoked here stays revoked)')
    .option('--in <file>', 'read this file instead of stdin')
    .action(async (opts: { in?: string }) => {
      const input = opts.in === undefined ? Readable.from(ctx.io.stdin) : createReadStream(opts.in);
      await ctx.withApp(async (app) => {
        const n = await importStore({ store: app.store, tokenStates: app.tokenStates, cipher: app.tokenCipher }, createInterface({ input, crlfDelay: Infinity }));
        ctx.io.stderr(`imported ${describeImport(n)}\n`);
      });
    });

  return cmd;
}
