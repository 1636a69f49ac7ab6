import { spawn } from 'node:child_process';
import { resolve } from 'node:path';

const CLI = resolve(import.meta.dirname, '../../src/cli.ts');
const TSX = import.meta.resolve('tsx');

export interface CliResult {
  code: number;
  stdout: string;
  stderr: string;
}

/**
 * Runs the passgate CLI from source in a child process, as an operator would run it. `wrap` is a command the CLI
 * runs under, given the CLI's command line as its last arguments (a shell setting `ulimit`, `script` for a terminal).
 */
export function runCli(args: string[], options: { cwd: string; env?: Record<string, string>; input?: string; wrap?: string[] }): Promise<CliResult> {
  return new Promise((resolvePromise, reject) => {
    const command = [...(options.wrap ?? []), process.execPath, '--import', TSX, CLI, ...args];
    const child = spawn(command[0]!, command.slice(1), {
      cwd: options.cwd,
      env: { PATH: process.env.PATH ?? '', HOME: process.env.HOME ?? '/', ...options.env },
      stdio: ['pipe', 'pipe', 'pipe'],
    });
    let stdout = '';
    let stderr = '';
    child.stdout.on('data', (d) => (stdout += d));
    child.stderr.on('data', (d) => (stderr += d));
    const timer = setTimeout(() => child.kill('SIGKILL'), 60_000);
    child.on('error', reject);
    child.on('close', (code) => {
      clearTimeout(timer);
      resolvePromise({ code: code ?? -1, stdout, stderr });
    });
    child.stdin.end(options.input ?? '');
  });
}
