import { realpathSync, watch, type FSWatcher } from 'node:fs';
import { dirname } from 'node:path';
import type { EventLogger } from '../core/event-logger.js';

/**
 * Calls `onChange` (once per burst of events, `debounceMs` after the last) when something changes in the folders
 * that hold the certificate files.
 *
 * Folders, not the files: renewals replace files by rename (certbot swaps symlinks in live/, Kubernetes swaps a
 * `..data` symlink in the mount, most tools write a temporary file and rename it), after which a watch on the old
 * file would see nothing more. A folder watch also sees writes to the files in it (inotify reports them on the
 * folder). Files that are symlinks get their target's folder watched as well, for in-place writes there. Any event
 * in a folder triggers the callback: a reload that finds the same content changes nothing.
 */
export class CertificateWatcher {
  private readonly watchers = new Map<string, FSWatcher>();
  private timer: NodeJS.Timeout | null = null;
  private closed = false;

  constructor(
    private readonly onChange: () => void,
    private readonly log: EventLogger,
    private readonly debounceMs = 500,
  ) {}

  /** Watches the folders of `files` (and of their symlink targets), and stops watching folders no longer among them. */
  watch(files: readonly string[]): void {
    if (this.closed) return;
    const folders = new Set(files.flatMap((file) => [dirname(file), dirname(realpathOrSelf(file))]));
    for (const [folder, watcher] of this.watchers) {
      if (!folders.has(folder)) {
        watcher.close();
        this.watchers.delete(folder);
      }
    }
    for (const folder of folders) {
      if (!this.watchers.has(folder)) this.start(folder);
    }
  }

  /** Stops watching and drops a pending callback. Idempotent. */
  close(): void {
    this.closed = true;
    if (this.timer) clearTimeout(this.timer);
    this.timer = null;
    for (const watcher of this.watchers.values()) watcher.close();
    this.watchers.clear();
  }

  private start(folder: string): void {
    let watcher: FSWatcher;
    try {
      // Not persistent: watching must not keep the process alive on its own; the listeners do that.
      watcher = watch(folder, { persistent: false }, () => this.schedule());
    } catch (error) {
      this.log.warn({ folder, cause: (error as Error).message }, 'certificate folder not watched');
      return;
    }
    watcher.on('error', (error: Error) => {
      this.log.warn({ folder, cause: error.message }, 'certificate folder not watched');
      watcher.close();
      this.watchers.delete(folder);
    });
    this.watchers.set(folder, watcher);
  }

  private schedule(): void {
    if (this.closed) return;
    if (this.timer) clearTimeout(this.timer);
    this.timer = setTimeout(() => {
      this.timer = null;
      this.onChange();
    }, this.debounceMs);
    this.timer.unref();
  }
}

function realpathOrSelf(file: string): string {
  try {
    return realpathSync(file);
  } catch {
    return file; // a missing file: its folder is watched, so its arrival is seen
  }
}
