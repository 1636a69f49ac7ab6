import { randomBytes } from 'node:crypto';
import { mkdir, open, rename } from 'node:fs/promises';
import { join } from 'node:path';

/**
 * Local mailboxes without Dovecot: one folder per recipient under `root`, one `.eml` file per message. A file is
 * written and fsynced under a hidden name, then renamed, so a reader never sees half a message (the Maildir rule).
 */
export class MailFolder {
  private count = 0;

  constructor(readonly root: string) {}

  folder(user: string): string {
    const name = user.toLowerCase();
    if (!/^[^/\\\s]+$/.test(name) || name === '.' || name === '..') throw new Error(`unusable mailbox name ${JSON.stringify(user)}`);
    return join(this.root, name);
  }

  async deliver(user: string, raw: Buffer): Promise<string> {
    const folder = this.folder(user);
    await mkdir(folder, { recursive: true, mode: 0o700 });
    const base = `${Date.now()}-${++this.count}-${randomBytes(3).toString('hex')}`;
    const staged = join(folder, `.${base}.tmp`);
    const file = await open(staged, 'wx', 0o600);
    try {
      await file.writeFile(raw);
      await file.sync();
    } finally {
      await file.close();
    }
    const target = join(folder, `${base}.eml`);
    await rename(staged, target);
    return target;
  }
}
