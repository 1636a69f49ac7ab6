import { createReadStream, createWriteStream } from 'node:fs';
import { createInterface } from 'node:readline';
import { Readable } from 'node:stream';
import { Command } from 'commander';
import { exportRecords, importRecords } from '../admin/store-transfer.js';
import type { CliContext } from './cli-context.js';

export function storeCommand(ctx: CliContext): Command {
  const cmd = new Command('store').description('move app passwords between stores (JSON lines, hashes only)');

  cmd
    .command('export')
    .description('write every app password record (hashes, never passwords) as JSON lines')
    .option('--out <file>', 'write to this file (mode 0600) instead of stdout')
    .action(async (opts: { out?: string }) => {
      await ctx.withApp(async (app) => {
        if (opts.out === undefined) {
          const n = await exportRecords(app.store, (line) => ctx.io.stdout(line));
          ctx.io.stderr(`exported ${n} records\n`);
          return;
        }
        const file = createWriteStream(opts.out, { mode: 0o600, flags: 'wx' });
        const n = await exportRecords(app.store, (line) => file.write(line));
        await new Promise<void>((resolve, reject) => file.end((err?: Error | null) => (err ? reject(err) : resolve())));
        ctx.io.stderr(`exported ${n} records to ${opts.out}\n`);
      });
    });

  cmd
    .command('import')
    .description('read JSON lines from `store export` into the configured store (same id: replaced)')
    .option('--in <file>', 'read this file instead of stdin')
    .action(async (opts: { in?: string }) => {
      const input = opts.in === undefined ? Readable.from(ctx.io.stdin) : createReadStream(opts.in);
      await ctx.withApp(async (app) => {
        const n = await importRecords(app.store, createInterface({ input, crlfDelay: Infinity }));
        ctx.io.stderr(`imported ${n} records\n`);
      });
    });

  return cmd;
}
