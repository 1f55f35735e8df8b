/** The images a `queue add` enqueues from a list file of paths (a folder's images: `listImageFolder` of @s2cpnet/data). */
import { promises as fsp } from 'node:fs';
import * as path from 'node:path';
import { InputError } from '@s2cpnet/core';
import { describeFsError } from '@s2cpnet/data';

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
