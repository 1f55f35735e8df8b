/** The images a `queue add` enqueues: a folder's images, or a list file of paths. */
import { promises as fsp } from 'node:fs';
import * as path from 'node:path';
import { InputError } from '@s2cpnet/core';
import { describeFsError, realImagePath } from '@s2cpnet/data';

/** Extensions taken from a folder (as `s2cpnet caption` does). */
export const IMAGE_EXTENSIONS: readonly string[] = ['.tif', '.tiff', '.jpg', '.jpeg', '.png'];

/**
 * The images of a folder as absolute paths, sorted by name; with `recursive`, those of its subfolders after them
 * (sorted; links to folders are not followed). A file that is a symbolic link leading out of the folder is refused,
 * and a folder without images is an `InputError`, as in `s2cpnet caption`.
 */
export async function listImageFolder(dir: string, options: { recursive?: boolean } = {}): Promise<string[]> {
  const root = path.resolve(dir);
  const found: string[] = [];
  const walk = async (folder: string): Promise<void> => {
    let listed;
    try {
      listed = await fsp.readdir(folder, { withFileTypes: true });
    } catch (error) {
      const code = (error as NodeJS.ErrnoException).code;
      throw new InputError(code === 'ENOENT' ? 'no such folder' : code === 'ENOTDIR' ? 'not a folder (give a list of files with --list)' : describeFsError(code, 'folder'), { file: folder, cause: error });
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
  if (found.length === 0) throw new InputError(`folder holds no ${IMAGE_EXTENSIONS.join('/')} images${options.recursive ? ' (searched recursively)' : ' (searched without subfolders)'}`, { file: root });
  return found;
}

/**
 * The paths of a list file: one per line, UTF-8; blank lines and lines starting with `#` are skipped; relative paths
 * are taken relative to the list file's folder. Every path must name an existing file (an `InputError` names the
 * first that does not, with its line number), so that a typo is found before any work is queued.
 */
export async function readImageList(file: string): Promise<string[]> {
  const listFile = path.resolve(file);
  let text: string;
  try {
    text = await fsp.readFile(listFile, 'utf8');
  } catch (error) {
    const code = (error as NodeJS.ErrnoException).code;
    throw new InputError(code === 'ENOENT' ? 'no such list file' : describeFsError(code, 'list file'), { file: listFile, cause: error });
  }
  const out: string[] = [];
  const lines = text.split(/\r?\n/);
  for (let i = 0; i < lines.length; i++) {
    const line = lines[i]!.trim();
    if (line === '' || line.startsWith('#')) continue;
    const full = path.resolve(path.dirname(listFile), line);
    let stat;
    try {
      stat = await fsp.stat(full);
    } catch (error) {
      const code = (error as NodeJS.ErrnoException).code;
      throw new InputError(`line ${i + 1}: ${code === 'ENOENT' ? 'no such file' : describeFsError(code, 'file')}: ${full}`, { file: listFile, cause: error });
    }
    if (!stat.isFile()) throw new InputError(`line ${i + 1}: not a file: ${full}`, { file: listFile });
    out.push(full);
  }
  if (out.length === 0) throw new InputError('the list names no image files (one path per line; # starts a comment)', { file: listFile });
  return out;
}
