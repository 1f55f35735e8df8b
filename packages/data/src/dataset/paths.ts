import { promises as fsp } from 'node:fs';
import * as path from 'node:path';
import { InputError } from '@s2cpnet/core';
import { describeFsError } from '../image/codec';

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

/**
 * Resolves symbolic links in `file` (realpath) and checks that it still lies inside `imagesDir` (also resolved).
 * A link that leads out of the folder is refused with an `InputError` naming the file and where it leads: a caption
 * file or a folder of images must not make the toolkit read files elsewhere. Returns the real path.
 */
export async function realImagePath(imagesDir: string, file: string): Promise<string> {
  let realDir: string;
  try {
    realDir = await fsp.realpath(imagesDir);
  } catch (error) {
    throw new InputError(describeFsError((error as NodeJS.ErrnoException).code, 'images folder'), { file: imagesDir, cause: error });
  }
  let real: string;
  try {
    real = await fsp.realpath(file);
  } catch (error) {
    const code = (error as NodeJS.ErrnoException).code;
    const dangling = code === 'ENOENT' && (await fsp.lstat(file).then((stat) => stat.isSymbolicLink(), () => false));
    throw new InputError(dangling ? 'image file is a symbolic link to nothing' : describeFsError(code, 'image file'), { file, cause: error });
  }
  const relative = path.relative(realDir, real);
  if (relative === '' || relative === '..' || relative.startsWith(`..${path.sep}`) || path.isAbsolute(relative)) {
    throw new InputError(
      `refusing a symbolic link to ${real}, outside the images folder ${imagesDir}; copy the file into the folder, or give its real location`,
      { file },
    );
  }
  return real;
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

/** The image file extensions a folder of images is read for (case-insensitive). */
export const IMAGE_EXTENSIONS: readonly string[] = Object.freeze(['.tif', '.tiff', '.jpg', '.jpeg', '.png']);

/**
 * The images of a folder as absolute paths, sorted by name; with `recursive`, those of each subfolder after the
 * folder's own (sorted; links to folders are not followed). A file that is a symbolic link leading out of the folder
 * is refused (`realImagePath`), and a folder without images is an `InputError` naming it; `emptyHint` ends that
 * message when the search was not recursive (e.g. how to search subfolders).
 */
export async function listImageFolder(dir: string, options: { recursive?: boolean; emptyHint?: string } = {}): Promise<string[]> {
  const root = path.resolve(dir);
  const found: string[] = [];
  const walk = async (folder: string): Promise<void> => {
    let listed;
    try {
      listed = await fsp.readdir(folder, { withFileTypes: true });
    } catch (error) {
      const code = (error as NodeJS.ErrnoException).code;
      throw new InputError(code === 'ENOENT' ? 'no such folder' : code === 'ENOTDIR' ? 'not a folder' : describeFsError(code, 'folder'), { file: folder, cause: error });
    }
    listed.sort((a, b) => (a.name < b.name ? -1 : a.name > b.name ? 1 : 0));
    for (const entry of listed) {
      if (entry.isDirectory() || !IMAGE_EXTENSIONS.includes(path.extname(entry.name).toLowerCase())) continue;
      await realImagePath(root, path.join(folder, entry.name));
      found.push(path.join(folder, entry.name));
    }
    if (options.recursive) for (const entry of listed) if (entry.isDirectory()) await walk(path.join(folder, entry.name));
  };
  await walk(root);
  if (found.length === 0) {
    throw new InputError(`folder holds no ${IMAGE_EXTENSIONS.join('/')} images${options.recursive ? ' (searched recursively)' : (options.emptyHint ?? ' (searched without subfolders)')}`, { file: root });
  }
  return found;
}
