import { open, rm, type FileHandle } from 'node:fs/promises';
import { createInterface } from 'node:readline';
import { Readable } from 'node:stream';
import { Command } from 'commander';
import { describeImport, type Transferred } from '../admin/store-transfer.js';
import { GatewayError } from '../core/gateway-error.js';
import type { CliContext } from './cli-context.js';

export function storeCommand(ctx: CliContext): Command {
  const cmd = new Command('store').description('move app passwords and token state between stores (JSON lines; hashes and sealed tokens only)');
  const counts = (n: Transferred) => `${n.records} app passwords and ${n.tokens} token states`;

  cmd
    .command('export')
    .description('write a pepper check, every app password record (hashes, never passwords) and token state (tokens sealed, never in clear) as JSON lines, to a pipe or a new file')
    .option('--out <file>', 'write to this new file (mode 0600; never overwritten) instead of stdout')
    .option('--no-tokens', 'leave token state out (app passwords only)')
    .action(async (opts: { out?: string; tokens: boolean }) => {
      const by = ctx.actor();
      if (opts.out === undefined) {
        refuseTerminal(ctx.io.stdoutIsTty === true);
        await ctx.withApp(async (app) => {
          const n = await app.transfer.export({ tokens: opts.tokens, by, destination: 'stdout' }, (line) => writeStdout(ctx, line));
          ctx.io.stderr(`exported ${counts(n)}\n`);
        });
        return;
      }
      const out = opts.out;
      // The file is created before the store is opened, so a name already taken fails at once and writes nothing.
      const file = await createExportFile(out);
      try {
        const n = await ctx.withApp((app) => app.transfer.export({ tokens: opts.tokens, by, destination: out }, (line) => writeLine(file, out, line)));
        await file.close().catch((cause: unknown) => {
          throw fileError(`cannot write ${out}`, cause);
        });
        ctx.io.stderr(`exported ${counts(n)} to ${out}\n`);
      } catch (error) {
        // Nothing half written is left behind: a partial export would import as a smaller store.
        await file.close().catch(() => undefined);
        await rm(out, { force: true });
        if (error instanceof GatewayError && error.code === 'PG_FILE_FAILED') error.message += '; the partial file was removed';
        throw error;
      }
    });

  cmd
    .command('import')
    .description('read JSON lines from `store export` into the configured store (same id: replaced, but a password revoked here stays revoked; same token key: replaced if newer in the file); refused whole, before any write, on a bad line, another pepper or another token key')
    .option('--in <file>', 'read this file instead of stdin')
    .action(async (opts: { in?: string }) => {
      if (opts.in === undefined && ctx.io.stdinIsTty === true) {
        throw new GatewayError('PG_INVALID_INPUT', 'store import reads what store export wrote: give --in FILE, or pipe it in (stdin is a terminal)');
      }
      const input = opts.in === undefined ? Readable.from(ctx.io.stdin) : (await openImportFile(opts.in)).createReadStream();
      await ctx.withApp(async (app) => {
        const n = await app.transfer.import({ by: ctx.actor() }, createInterface({ input, crlfDelay: Infinity }));
        if (!n.pepperChecked && n.records > 0) {
          ctx.io.stderr(
            'passgate: warning: the file has no pepper check (written by an older passgate): its app passwords verify here only if security.pepper is the exporting configuration\'s\n',
          );
        }
        ctx.io.stderr(`imported ${describeImport(n)}\n`);
      }).catch((error: unknown) => {
        input.destroy(); // e.g. the configuration did not load: the file is closed with its stream
        throw error;
      });
    });

  return cmd;
}

/**
 * docs/security.md: hashes and selectors are never printed. An export goes to a file or a pipe (`store export |
 * ssh host passgate store import`), never to a terminal, where it would end up in scrollback and screen logs.
 */
export function refuseTerminal(stdoutIsTty: boolean): void {
  if (!stdoutIsTty) return;
  throw new GatewayError(
    'PG_INVALID_INPUT',
    'store export writes password hashes and selectors: not to a terminal. Use --out FILE, or pipe it (passgate store export | ssh host passgate store import)',
  );
}

async function createExportFile(path: string): Promise<FileHandle> {
  try {
    return await open(path, 'wx', 0o600);
  } catch (cause) {
    if ((cause as NodeJS.ErrnoException).code === 'EEXIST') {
      throw new GatewayError('PG_INVALID_INPUT', `--out ${path}: the file already exists (an export never overwrites one): choose a new name or remove it first`, { cause });
    }
    throw fileError(`cannot create ${path}`, cause);
  }
}

async function openImportFile(path: string): Promise<FileHandle> {
  try {
    return await open(path, 'r');
  } catch (cause) {
    if ((cause as NodeJS.ErrnoException).code === 'ENOENT') throw new GatewayError('PG_INVALID_INPUT', `--in ${path}: no such file`, { cause });
    throw fileError(`cannot read ${path}`, cause);
  }
}

/** A closed pipe (the importing side gone) fails the export, exit 1, rather than report lines nobody read. */
async function writeStdout(ctx: CliContext, line: string): Promise<void> {
  if (!ctx.io.writeStdout) return ctx.io.stdout(line);
  try {
    await ctx.io.writeStdout(line);
  } catch (cause) {
    throw fileError('cannot write the export to stdout (did the reading end of the pipe close?)', cause);
  }
}

async function writeLine(file: FileHandle, path: string, line: string): Promise<void> {
  try {
    await file.write(line);
  } catch (cause) {
    throw fileError(`cannot write ${path}`, cause);
  }
}

function fileError(what: string, cause: unknown): GatewayError {
  const error = cause as NodeJS.ErrnoException;
  return new GatewayError('PG_FILE_FAILED', `${what}: ${error.code ?? error.message}`, { cause });
}
