import * as path from 'node:path';
import { InputError } from '@s2cpnet/core';

/**
 * Turns a file name from a caption file into an image id (a clean relative path with `/` separators) and an
 * absolute path inside `imagesDir`. A name that is absolute or climbs out of the folder with `..` is refused:
 * a caption file must not make the toolkit read (or, for masks, write next to) files elsewhere.
 */
export function resolveImagePath(
  imagesDir: string,
  name: unknown,
  where: { file: string; jsonPath: string },
): { id: string; file: string } {
  if (typeof name !== 'string' || name.trim().length === 0) {
    throw new InputError(`expected a non-empty file name string, found ${describeValue(name)}`, where);
  }
  if (name.includes('\0')) {
    throw new InputError(`file name ${JSON.stringify(name)} contains a NUL character`, where);
  }
  const slashed = name.replace(/\\/g, '/');
  if (path.posix.isAbsolute(slashed) || path.win32.isAbsolute(name) || /^[A-Za-z]:/.test(name)) {
    throw new InputError(
      `file name ${JSON.stringify(name)} is an absolute path; expected a path relative to the images folder`,
      where,
    );
  }
  const normalized = path.posix.normalize(slashed);
  if (normalized === '..' || normalized.startsWith('../')) {
    throw new InputError(
      `file name ${JSON.stringify(name)} leaves the images folder (it goes up with ".."); expected a path inside it`,
      where,
    );
  }
  if (normalized === '.' || normalized.endsWith('/')) {
    throw new InputError(`file name ${JSON.stringify(name)} names a folder, not an image file`, where);
  }
  return { id: normalized, file: path.resolve(imagesDir, ...normalized.split('/')) };
}

/** A short description of a JSON value for "expected X, found Y" messages. */
export function describeValue(value: unknown): string {
  if (value === null) return 'null';
  if (Array.isArray(value)) return `an array of ${value.length}`;
  if (typeof value === 'object') return 'an object';
  if (typeof value === 'string') {
    return value.length > 40 ? `the string ${JSON.stringify(value.slice(0, 40))}...` : `the string ${JSON.stringify(value)}`;
  }
  if (value === undefined) return 'nothing';
  return `${typeof value} ${String(value)}`;
}
