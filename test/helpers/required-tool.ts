import { spawnSync } from 'node:child_process';

/**
 * A test's `skip` option for a tool it needs: false when `command args` runs, else the reason. In CI (`CI` set,
 * as .ci/run does) a missing tool is a failure, not a skip: CI installs everything the tests need, so a skip
 * there would drop coverage quietly.
 */
export function skipWithout(command: string, args: string[], why: string): string | false {
  const ran = spawnSync(command, args, { stdio: 'ignore' });
  if (!ran.error && ran.status === 0) return false;
  const reason = `${command} is not installed: ${why}`;
  if (process.env['CI']) throw new Error(`${reason} (CI must install it: .ci/run, .ci/apt-packages)`);
  return reason;
}
