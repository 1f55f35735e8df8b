import { promises as fsp, constants as fsConstants, closeSync, fstatSync, openSync, readSync, realpathSync, statSync } from 'node:fs';
import * as path from 'node:path';
import { CheckpointError } from '@s2cpnet/core';

/**
 * Reading files of an untrusted checkpoint (or weights package): every name is resolved inside its folder after
 * symbolic links, only regular files are read (never a FIFO, a device or a folder, which could block or never end),
 * and never more bytes than expected. Error messages name the file and the JSON entry that named it, never the
 * file's content.
 */

/** Largest JSON file of a checkpoint that is read (a checkpoint description, vocabulary, manifest, ...). */
export const MAX_JSON_BYTES = 64 * 2 ** 20;

/** Opened without following a final symbolic link (already resolved) and without blocking on a FIFO. */
const READ_FLAGS = fsConstants.O_RDONLY | (fsConstants.O_NONBLOCK ?? 0) | (fsConstants.O_NOFOLLOW ?? 0);

/** A short description of an untrusted value for an error message: never more than a few characters of it. */
export function brief(value: unknown): string {
  if (value === undefined) return 'nothing';
  if (value === null || typeof value === 'boolean' || typeof value === 'number') return JSON.stringify(value) ?? String(value);
  if (typeof value === 'string') return value.length <= 40 && /^[\x20-\x7e]*$/.test(value) ? JSON.stringify(value) : `a string of ${value.length} characters`;
  if (Array.isArray(value)) return `an array of ${value.length}`;
  return `a ${typeof value === 'object' ? 'JSON object' : typeof value}`;
}

function isInside(root: string, target: string): boolean {
  const relative = path.relative(root, target);
  return relative === '' || (!relative.startsWith(`..${path.sep}`) && relative !== '..' && !path.isAbsolute(relative));
}

/** Whether a JSON string looks like an absolute path on any system (`/x`, `C:\x`, `C:/x`, `\\server\x`). */
export function looksAbsolute(name: string): boolean {
  return path.isAbsolute(name) || path.posix.isAbsolute(name) || path.win32.isAbsolute(name);
}

/**
 * The path of `name` (a relative file name read from `jsonPath` of `source`) inside `root`, after symbolic links.
 * Throws a CheckpointError naming `jsonPath` when the name is not a relative path or resolves outside `root`
 * (`../x`, an absolute path, a link to elsewhere). A name that does not exist yet resolves lexically (reading it
 * then fails as missing). `what` names the folder in messages ("checkpoint folder", "package folder").
 */
export function resolveInside(root: string, name: unknown, jsonPath: string, source: string, what = 'checkpoint folder'): string {
  if (typeof name !== 'string' || name === '' || name.includes('\0')) {
    throw new CheckpointError(`${source}: ${jsonPath}: expected a file name relative to the ${what}, found ${brief(name)}`);
  }
  const outside = (link = false) =>
    new CheckpointError(`${source}: ${jsonPath}: ${brief(name)} ${link ? 'is a symbolic link to a file' : 'lies'} outside the ${what} ${root}; refusing to read it`);
  if (looksAbsolute(name)) throw outside();
  const lexical = path.resolve(root, name);
  if (!isInside(root, lexical)) throw outside();
  let realRoot: string;
  try {
    realRoot = realpathSync(root);
  } catch (error) {
    throw new CheckpointError(`${root}: cannot read the ${what} (${(error as NodeJS.ErrnoException).code ?? 'error'})`, { cause: error });
  }
  let real: string;
  try {
    real = realpathSync(lexical);
  } catch (error) {
    if ((error as NodeJS.ErrnoException).code !== 'ENOENT') throw new CheckpointError(`${lexical}: cannot read (${(error as NodeJS.ErrnoException).code ?? 'error'})`, { cause: error });
    // Missing, or a dangling link: resolve the folder it would be in, which must itself be inside.
    try {
      real = path.join(realpathSync(path.dirname(lexical)), path.basename(lexical));
    } catch {
      return lexical;
    }
  }
  if (!isInside(realRoot, real)) throw outside(true);
  return real;
}

function codeOf(error: unknown): string {
  return (error as NodeJS.ErrnoException).code ?? 'error';
}

export interface ReadLimits {
  /** Refuse files larger than this (default MAX_JSON_BYTES). */
  maxBytes?: number;
  /** Refuse files of any other size (the read is then exactly this many bytes). */
  exactBytes?: number;
  /** What the file is, for messages ("the vocabulary"). */
  what: string;
  /** The entry that named the file, for messages (`$.files.vocabulary`). */
  jsonPath?: string;
}

function where(file: string, limits: ReadLimits): string {
  return limits.jsonPath ? `${file} (${limits.jsonPath})` : file;
}

/**
 * Checks, without opening it, that `file` is a regular file within the limits; returns its size.
 * A FIFO, a device such as /dev/zero, a socket or a folder is refused.
 */
export function statRegularFile(file: string, limits: ReadLimits): number {
  let size: number;
  try {
    const stat = statSync(file);
    if (!stat.isFile()) throw new CheckpointError(`${where(file, limits)}: ${limits.what} is not a regular file (${stat.isDirectory() ? 'a folder' : stat.isFIFO() ? 'a FIFO' : stat.isCharacterDevice() || stat.isBlockDevice() ? 'a device' : 'a special file'}); refusing to read it`);
    size = stat.size;
  } catch (error) {
    if (error instanceof CheckpointError) throw error;
    throw new CheckpointError(`${where(file, limits)}: cannot read ${limits.what} (${codeOf(error)})`, { cause: error });
  }
  checkSize(file, size, limits);
  return size;
}

function checkSize(file: string, size: number, limits: ReadLimits): void {
  if (limits.exactBytes !== undefined && size !== limits.exactBytes) {
    throw new CheckpointError(`${where(file, limits)}: expected ${limits.exactBytes} bytes, found ${size}: truncated or mismatched`);
  }
  const max = limits.maxBytes ?? MAX_JSON_BYTES;
  if (size > max) throw new CheckpointError(`${where(file, limits)}: ${limits.what} is larger than ${max} bytes (${size}); refusing to read it`);
}

/**
 * Reads a regular file of at most `maxBytes` (or exactly `exactBytes`) bytes. The file is opened without blocking
 * and checked with fstat before reading, and never more than its checked size is read.
 */
export async function readRegularFile(file: string, limits: ReadLimits): Promise<Buffer> {
  statRegularFile(file, limits);
  let handle: fsp.FileHandle;
  try {
    handle = await fsp.open(file, READ_FLAGS);
  } catch (error) {
    if (codeOf(error) === 'ELOOP') throw new CheckpointError(`${where(file, limits)}: ${limits.what} is a symbolic link that changed while reading; refusing to read it`, { cause: error });
    throw new CheckpointError(`${where(file, limits)}: cannot read ${limits.what} (${codeOf(error)})`, { cause: error });
  }
  try {
    const stat = await handle.stat();
    if (!stat.isFile()) throw new CheckpointError(`${where(file, limits)}: ${limits.what} is not a regular file; refusing to read it`);
    checkSize(file, stat.size, limits);
    const bytes = Buffer.allocUnsafe(stat.size);
    let at = 0;
    while (at < bytes.length) {
      const { bytesRead } = await handle.read(bytes, at, bytes.length - at, at);
      if (bytesRead === 0) break;
      at += bytesRead;
    }
    if (at !== bytes.length) throw new CheckpointError(`${where(file, limits)}: expected ${bytes.length} bytes, read ${at}: the file changed while reading`);
    return bytes;
  } catch (error) {
    if (error instanceof CheckpointError) throw error;
    throw new CheckpointError(`${where(file, limits)}: cannot read ${limits.what} (${codeOf(error)})`, { cause: error });
  } finally {
    await handle.close().catch(() => undefined);
  }
}

/** Synchronous `readRegularFile`, for the (synchronous) resolution of package folders. */
export function readRegularFileSync(file: string, limits: ReadLimits): Buffer {
  statRegularFile(file, limits);
  let fd: number;
  try {
    fd = openSync(file, READ_FLAGS);
  } catch (error) {
    throw new CheckpointError(`${where(file, limits)}: cannot read ${limits.what} (${codeOf(error)})`, { cause: error });
  }
  try {
    const stat = fstatSync(fd);
    if (!stat.isFile()) throw new CheckpointError(`${where(file, limits)}: ${limits.what} is not a regular file; refusing to read it`);
    checkSize(file, stat.size, limits);
    const bytes = Buffer.allocUnsafe(stat.size);
    let at = 0;
    while (at < bytes.length) {
      const read = readSync(fd, bytes, at, bytes.length - at, at);
      if (read === 0) break;
      at += read;
    }
    if (at !== bytes.length) throw new CheckpointError(`${where(file, limits)}: expected ${bytes.length} bytes, read ${at}: the file changed while reading`);
    return bytes;
  } finally {
    closeSync(fd);
  }
}

/**
 * Parses JSON text without ever quoting it: V8's messages include a snippet of the text
 * (`Unexpected token 'r', "root:x:0:0"... is not valid JSON`), so only the position is kept.
 */
export function parseJsonQuietly(text: string, file: string, limits: ReadLimits): unknown {
  try {
    return JSON.parse(text);
  } catch (error) {
    const position = /at position (\d+)/.exec((error as Error).message)?.[1];
    let at = '';
    if (position !== undefined) {
      const before = text.slice(0, Number(position));
      const line = before.split('\n').length;
      at = ` at line ${line}, column ${Number(position) - before.lastIndexOf('\n')}`;
    } else if (/end of JSON input/i.test((error as Error).message)) at = ' (it ends too early)';
    throw new CheckpointError(`${where(file, limits)}: ${limits.what} is not valid JSON${at}`);
  }
}

/** Reads and parses a JSON file of at most `maxBytes` (default 64 MiB) as `readRegularFile` does. */
export async function readJsonFile(file: string, limits: ReadLimits): Promise<unknown> {
  const bytes = await readRegularFile(file, limits);
  return parseJsonQuietly(bytes.toString('utf8'), file, limits);
}

/** Synchronous `readJsonFile`. */
export function readJsonFileSync(file: string, limits: ReadLimits): unknown {
  return parseJsonQuietly(readRegularFileSync(file, limits).toString('utf8'), file, limits);
}
