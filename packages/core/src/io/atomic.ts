import { promises as fsp, writeFileSync, renameSync, mkdirSync, existsSync, rmSync, statSync } from 'node:fs';
import * as path from 'node:path';
import { randomBytes } from 'node:crypto';

function tempName(file: string): string {
  return path.join(path.dirname(file), `.${path.basename(file)}.${process.pid}.${randomBytes(4).toString('hex')}.tmp`);
}

/** Writes a file atomically: a temp file in the same folder, then a rename. Readers never see a half-written file. */
export async function writeFileAtomic(file: string, data: string | Uint8Array): Promise<void> {
  await fsp.mkdir(path.dirname(file), { recursive: true });
  const tmp = tempName(file);
  try {
    await fsp.writeFile(tmp, data);
    await fsp.rename(tmp, file);
  } catch (error) {
    await fsp.rm(tmp, { force: true });
    throw error;
  }
}

export function writeFileAtomicSync(file: string, data: string | Uint8Array): void {
  mkdirSync(path.dirname(file), { recursive: true });
  const tmp = tempName(file);
  try {
    writeFileSync(tmp, data);
    renameSync(tmp, file);
  } catch (error) {
    if (existsSync(tmp)) rmSync(tmp, { force: true });
    throw error;
  }
}

/** JSON with a trailing newline, written atomically. */
export async function writeJsonAtomic(file: string, value: unknown): Promise<void> {
  await writeFileAtomic(file, `${JSON.stringify(value, null, 2)}\n`);
}

/**
 * Test hook: `S2CPNET_TEST_CRASH=<point>` (or `<point>#N` for its N-th pass) kills this process with SIGKILL at that
 * point, to test that what a crash leaves on disk is recovered. Never set outside tests.
 */
export function crashPoint(point: string): void {
  const wanted = process.env.S2CPNET_TEST_CRASH;
  if (!wanted) return;
  const [name, nth] = wanted.split('#');
  if (name !== point) return;
  crashCounts.set(point, (crashCounts.get(point) ?? 0) + 1);
  if (crashCounts.get(point)! >= Number(nth ?? 1)) process.kill(process.pid, 'SIGKILL');
}
const crashCounts = new Map<string, number>();

/** Flushes a file or folder to disk (best effort: some file systems cannot fsync a folder). */
async function fsyncPath(target: string): Promise<void> {
  let handle: fsp.FileHandle | undefined;
  try {
    handle = await fsp.open(target, 'r');
    await handle.sync();
  } catch {
    // e.g. EISDIR/EPERM on platforms without folder fsync: the rename order still holds for process crashes
  } finally {
    await handle?.close();
  }
}

/** Every file under `dir`, then `dir` itself, flushed to disk. */
async function fsyncTree(dir: string): Promise<void> {
  for (const entry of await fsp.readdir(dir, { withFileTypes: true })) {
    const p = path.join(dir, entry.name);
    if (entry.isDirectory()) await fsyncTree(p);
    else if (entry.isFile()) await fsyncPath(p);
  }
  await fsyncPath(dir);
}

/**
 * Writes a whole folder atomically: `fill` writes into a temp folder `.<name>.<pid>.<hex>.tmp` beside `dir`, which
 * then replaces `dir` (with `durable`, once every file in it is flushed to disk, so that a power loss cannot leave
 * it half-written either): the old folder is first renamed to `<temp>.old`, the temp folder renamed to `dir`, and
 * the old one removed last. A crash leaves `dir` (old or new) or, between the two renames, the complete
 * old copy `<temp>.old` and the complete new one `<temp>`: {@link recoverDirAtomic} puts the new one in place.
 */
export async function writeDirAtomic(dir: string, fill: (tmpDir: string) => Promise<void>, options: { durable?: boolean } = {}): Promise<void> {
  const parent = path.dirname(path.resolve(dir));
  await fsp.mkdir(parent, { recursive: true });
  const tmp = path.join(parent, `.${path.basename(dir)}.${process.pid}.${randomBytes(4).toString('hex')}.tmp`);
  await fsp.mkdir(tmp);
  try {
    await fill(tmp);
    if (options.durable) await fsyncTree(tmp);
  } catch (error) {
    await fsp.rm(tmp, { recursive: true, force: true });
    throw error;
  }
  const old = `${tmp}.old`;
  const hadOld = existsSync(dir);
  if (hadOld) await fsp.rename(dir, old);
  crashPoint(`dir-moved-aside:${path.basename(dir)}`);
  try {
    await fsp.rename(tmp, dir);
  } catch (error) {
    if (hadOld) await fsp.rename(old, dir).catch(() => {}); // put the old one back; recoverDirAtomic handles the rest
    await fsp.rm(tmp, { recursive: true, force: true });
    throw error;
  }
  if (options.durable) await fsyncPath(parent);
  if (hadOld) await fsp.rm(old, { recursive: true, force: true });
}

/** Names of the temp files and folders of writeFileAtomic / writeDirAtomic: `.<name>.<pid>.<hex8>.tmp[.old]`. */
const LEFTOVER = /^\.(.+)\.(\d+)\.([0-9a-f]{8})\.tmp(\.old)?$/;

/** What {@link recoverDirAtomic} did. */
export interface AtomicRecovery {
  /** The file or folder the leftovers belong to. */
  target: string;
  /** The leftover moved into place as `dir` (a complete copy), if any. */
  restored: string | null;
  /** Leftovers removed. */
  removed: string[];
}

/**
 * Cleans up after a writeFileAtomic / writeDirAtomic of `target` that a crash interrupted. When `target` is missing
 * and a complete copy exists, it is moved into place: the new copy of an interrupted swap (a `<temp>` beside its
 * `<temp>.old`, filled before the swap began), else the moved-aside old copy, else (only when `isComplete` says so)
 * a temp copy of a first write. Every other leftover is removed. Call it only while no other process writes
 * `target` (e.g. while holding the folder's lock): a leftover of a live writer looks the same as a crashed one.
 */
export async function recoverDirAtomic(target: string, options: { isComplete?: (candidate: string) => boolean } = {}): Promise<AtomicRecovery> {
  const parent = path.dirname(path.resolve(target));
  const base = path.basename(target);
  const report: AtomicRecovery = { target: path.resolve(target), restored: null, removed: [] };
  let names: string[];
  try {
    names = await fsp.readdir(parent);
  } catch {
    return report;
  }
  const leftovers = names.filter((n) => LEFTOVER.exec(n)?.[1] === base).map((n) => path.join(parent, n));
  if (leftovers.length === 0) return report;
  if (!existsSync(target)) {
    const olds = leftovers.filter((p) => p.endsWith('.old'));
    const temps = leftovers.filter((p) => !p.endsWith('.old'));
    const newest = (list: string[]) => list.map((p) => ({ p, t: statSync(p).mtimeMs })).sort((a, b) => b.t - a.t)[0]?.p ?? null;
    const complete = (p: string) => !options.isComplete || options.isComplete(p);
    const choice =
      newest(temps.filter((t) => olds.includes(`${t}.old`) && complete(t))) ??
      newest(olds.filter(complete)) ??
      (options.isComplete ? newest(temps.filter(complete)) : null);
    if (choice) {
      await fsp.rename(choice, target);
      report.restored = choice;
    }
  }
  for (const p of leftovers) {
    if (p === report.restored) continue;
    await fsp.rm(p, { recursive: true, force: true });
    report.removed.push(p);
  }
  return report;
}

/** {@link recoverDirAtomic} for every target in `dir` that has leftovers (top level only). */
export async function recoverAtomicLeftovers(dir: string, options: { isComplete?: (candidate: string) => boolean } = {}): Promise<AtomicRecovery[]> {
  let names: string[];
  try {
    names = await fsp.readdir(dir);
  } catch {
    return [];
  }
  const targets = [...new Set(names.map((n) => LEFTOVER.exec(n)?.[1]).filter((b): b is string => b !== undefined))];
  const reports: AtomicRecovery[] = [];
  for (const base of targets) reports.push(await recoverDirAtomic(path.join(dir, base), options));
  return reports;
}

/** Whether a name in a folder is a leftover temp file or folder of writeFileAtomic / writeDirAtomic. */
export function isAtomicLeftover(name: string): boolean {
  return LEFTOVER.test(name);
}

export * from './lock';
