import { closeSync, fsyncSync, linkSync, openSync, readFileSync, realpathSync, renameSync, statSync, unlinkSync, writeSync } from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { randomBytes } from 'node:crypto';
import { S2CPNetError } from '../errors';

/** Who holds a lock file: written into it as JSON. */
export interface LockOwner {
  pid: number;
  host: string;
  /** ISO time the lock was taken. */
  started: string;
  /** The owner's command line, to help a person tell what holds it. */
  command?: string;
}

/** A lock this process holds. `release()` is idempotent; it is also called on exit and on fatal signals. */
export interface HeldLock {
  file: string;
  owner: LockOwner;
  /** The dead owner whose stale lock was taken over, if any. */
  tookOverFrom: LockOwner | null;
  release(): void;
}

/** A lock file is held by a live process (code CONFIG: the CLI exits 2). */
export class LockedError extends S2CPNetError {
  readonly file: string;
  readonly owner: LockOwner | null;
  constructor(file: string, owner: LockOwner | null, message: string) {
    super('CONFIG', message);
    this.name = 'LockedError';
    this.file = file;
    this.owner = owner;
  }
}

const held = new Map<string, HeldLock>();
const SIGNALS: NodeJS.Signals[] = ['SIGINT', 'SIGTERM', 'SIGHUP'];
const signalHandlers = new Map<NodeJS.Signals, () => void>();

function releaseAll(): void {
  for (const lock of [...held.values()]) lock.release();
}

/**
 * While locks are held: release them on exit (process.exit included), and on SIGINT/SIGTERM/SIGHUP when nothing
 * else handles that signal (then the signal is raised again, so the process still dies of it as it would have).
 * When another handler is there (a graceful stop), it does the stopping and the lock goes with the owner's finally
 * or on exit.
 */
function installCleanup(): void {
  if (signalHandlers.size > 0) return;
  process.on('exit', releaseAll);
  for (const signal of SIGNALS) {
    const handler = () => {
      if (process.listenerCount(signal) > 1) return;
      releaseAll();
      uninstallCleanup();
      process.kill(process.pid, signal);
    };
    signalHandlers.set(signal, handler);
    process.on(signal, handler);
  }
}

function uninstallCleanup(): void {
  process.off('exit', releaseAll);
  for (const [signal, handler] of signalHandlers) process.off(signal, handler);
  signalHandlers.clear();
}

/** Whether a process with this pid runs on this machine (EPERM: it exists but is another user's). */
export function isProcessAlive(pid: number): boolean {
  if (!Number.isInteger(pid) || pid <= 0) return false;
  try {
    process.kill(pid, 0);
    return true;
  } catch (error) {
    return (error as NodeJS.ErrnoException).code === 'EPERM';
  }
}

function readOwner(file: string): { text: string; owner: LockOwner | null } | null {
  let text: string;
  try {
    text = readFileSync(file, 'utf8');
  } catch (error) {
    if ((error as NodeJS.ErrnoException).code === 'ENOENT') return null;
    throw error;
  }
  try {
    const json = JSON.parse(text) as Partial<LockOwner>;
    if (typeof json.pid === 'number' && typeof json.host === 'string') return { text, owner: json as LockOwner };
  } catch {
    // being written, or cut short by a crash
  }
  return { text, owner: null };
}

function sleepSync(ms: number): void {
  Atomics.wait(new Int32Array(new SharedArrayBuffer(4)), 0, 0, ms);
}

function describe(owner: LockOwner): string {
  return `pid ${owner.pid} on ${owner.host}, since ${owner.started}${owner.command ? `: ${owner.command}` : ''}`;
}

/**
 * Takes an exclusive lock: creates `file` with O_EXCL (`wx`) holding this process's pid, host, start time and command.
 * A lock whose owner is gone (same host, pid not running, or the lock of a dead process that had this pid) is stale:
 * `onStale` is told (null: an unreadable lock, cut short by a crash), and it is taken over (moved away under a unique name, checked to still be the stale one, removed).
 * A lock of a live process, of another host (which cannot be checked from here), or one taken by this process already
 * throws {@link LockedError} naming the owner. `what` names the locked thing in messages.
 */
export function acquireLock(lockFile: string, options: { what?: string; onStale?: (owner: LockOwner | null) => void } = {}): HeldLock {
  // One spelling per file (relative, absolute, through a symbolic link), so this process knows its own locks.
  let file = path.resolve(lockFile);
  try {
    file = path.join(realpathSync(path.dirname(file)), path.basename(file));
  } catch {
    // the folder does not exist: openSync reports it below
  }
  const what = options.what ?? file;
  const owner: LockOwner = { pid: process.pid, host: os.hostname(), started: new Date().toISOString(), command: process.argv.slice(1).join(' ') };
  let tookOverFrom: LockOwner | null = null;
  let unreadableSince = 0;
  for (let attempt = 0; attempt < 50; attempt++) {
    let fd: number;
    try {
      fd = openSync(file, 'wx');
    } catch (error) {
      if ((error as NodeJS.ErrnoException).code !== 'EEXIST') throw error;
      const existing = readOwner(file);
      if (existing === null) continue; // released meanwhile: try again
      const other = existing.owner;
      if (other === null) {
        // Being written by its owner right now, or cut short by a crash: wait a little before calling it stale.
        unreadableSince ||= Date.now();
        const age = Date.now() - Math.min(unreadableSince, statSync(file, { throwIfNoEntry: false })?.mtimeMs ?? Date.now());
        if (age < 2000) {
          sleepSync(100);
          continue;
        }
      } else {
        const here = other.host === owner.host;
        const ours = other.pid === process.pid && held.has(file);
        if (!here || ours || (other.pid !== process.pid && isProcessAlive(other.pid))) {
          throw new LockedError(
            file,
            other,
            `${what} is in use by another training process (${describe(other)}; lock file ${file}). ` +
              (here
                ? 'Wait for it to finish or stop it; if that pid is not a training run any more, delete the lock file.'
                : 'It runs on another machine, so this one cannot tell whether it is still alive: delete the lock file if it is not.'),
          );
        }
      }
      // Stale: move it away under a unique name, so that of two processes taking it over only one succeeds.
      const aside = `${file}.stale.${process.pid}.${randomBytes(4).toString('hex')}`;
      try {
        renameSync(file, aside);
      } catch (renameError) {
        if ((renameError as NodeJS.ErrnoException).code === 'ENOENT') continue;
        throw renameError;
      }
      let movedText = '';
      try {
        movedText = readFileSync(aside, 'utf8');
      } catch {
        // gone: nothing to check
      }
      if (movedText !== existing.text) {
        // Another process took the stale lock over between our read and our rename: give its lock back.
        try {
          linkSync(aside, file);
        } catch {
          // a third one holds it now: it will be checked on the next attempt
        }
        try {
          unlinkSync(aside);
        } catch {
          // already gone
        }
        continue;
      }
      unlinkSync(aside);
      tookOverFrom = other;
      options.onStale?.(other);
      continue;
    }
    try {
      writeSync(fd, `${JSON.stringify(owner)}\n`);
      fsyncSync(fd);
    } finally {
      closeSync(fd);
    }
    const lock: HeldLock = {
      file,
      owner,
      tookOverFrom,
      release() {
        if (held.get(file) !== lock) return;
        held.delete(file);
        try {
          const now = readOwner(file);
          if (now?.owner?.pid === owner.pid && now.owner.started === owner.started) unlinkSync(file);
        } catch {
          // nothing left to release
        }
        if (held.size === 0) uninstallCleanup();
      },
    };
    held.set(file, lock);
    installCleanup();
    return lock;
  }
  throw new LockedError(file, null, `${what}: could not take the lock file ${file} (it keeps changing hands)`);
}
