import { createHash } from 'node:crypto';
import { createReadStream } from 'node:fs';
import { mkdir, open, rename, rm, stat } from 'node:fs/promises';
import { basename, join } from 'node:path';
import { DownloadError, InputError } from '@s2cpnet/core';

export interface DownloadProgress {
  url: string;
  /** Bytes of the file present so far (including a resumed part). */
  receivedBytes: number;
  /** Size of the whole file when the server said so. */
  totalBytes: number | undefined;
}

export interface DownloadOptions {
  url: string;
  /** Expected SHA-256 of the file, 64 hex digits. The file is kept only if it matches. */
  sha256: string;
  /** Folder of the cache; created when missing. */
  cacheDir: string;
  /** Name of the cached file; default the last segment of the URL path. */
  fileName?: string;
  onProgress?: (progress: DownloadProgress) => void;
  signal?: AbortSignal;
}

export interface DownloadResult {
  /** Path of the verified file in the cache. */
  path: string;
  /** True when a verified cached file was reused (no request was made). */
  fromCache: boolean;
  /** True when an earlier partial download was continued with an HTTP range request. */
  resumed: boolean;
  bytes: number;
}

async function sha256OfFile(file: string): Promise<string> {
  const hash = createHash('sha256');
  for await (const chunk of createReadStream(file)) hash.update(chunk as Buffer);
  return hash.digest('hex');
}

async function sizeOf(file: string): Promise<number | null> {
  try {
    const s = await stat(file);
    return s.isFile() ? s.size : null;
  } catch {
    return null;
  }
}

/**
 * Downloads a file into a cache folder and checks its SHA-256.
 * - A cached file whose checksum matches is reused without any request.
 * - The download is written to `<name>.part` and renamed into place only after the checksum matched; on a mismatch
 *   the part is deleted and a DownloadError is thrown, so no unverified file is ever left in the cache.
 * - An interrupted download leaves its `.part`; the next call resumes it with an HTTP range request, or downloads
 *   again from the start when the server ignores ranges.
 * - HTTP errors (404, ...) throw a DownloadError naming the status and the URL.
 *
 * @example
 * ```ts
 * const { path } = await downloadFile({ url, sha256: 'e3b0c442...', cacheDir: '~/.cache/s2cpnet', onProgress: (p) => log(p) });
 * ```
 */
export async function downloadFile(options: DownloadOptions): Promise<DownloadResult> {
  const { url, cacheDir, onProgress, signal } = options;
  const expected = options.sha256.toLowerCase();
  if (!/^[0-9a-f]{64}$/.test(expected)) {
    throw new InputError(`expected 64 hex digits, found ${JSON.stringify(options.sha256)}`, { jsonPath: 'sha256' });
  }
  let parsed: URL;
  try {
    parsed = new URL(url);
  } catch {
    throw new InputError(`not a valid URL: ${JSON.stringify(url)}`, { jsonPath: 'url' });
  }
  if (parsed.protocol !== 'http:' && parsed.protocol !== 'https:') {
    throw new InputError(`only http and https URLs can be downloaded, found ${parsed.protocol}`, { jsonPath: 'url' });
  }
  const fileName = options.fileName ?? (decodeURIComponent(basename(parsed.pathname)) || expected);
  if (fileName !== basename(fileName) || fileName === '.' || fileName === '..') {
    throw new InputError(`fileName must be a plain file name, found ${JSON.stringify(fileName)}`, { jsonPath: 'fileName' });
  }
  await mkdir(cacheDir, { recursive: true });
  const target = join(cacheDir, fileName);
  const partial = `${target}.part`;

  const cachedSize = await sizeOf(target);
  if (cachedSize !== null) {
    if ((await sha256OfFile(target)) === expected) return { path: target, fromCache: true, resumed: false, bytes: cachedSize };
    await rm(target, { force: true }); // a corrupt or stale cache entry: fetch it again
  }

  const partSize = (await sizeOf(partial)) ?? 0;
  let response = await request(url, partSize > 0 ? partSize : 0, signal);
  let resumed = false;
  if (partSize > 0 && response.status === 206 && rangeStart(response) === partSize) resumed = true;
  else if (response.status === 416 || response.status === 206) {
    // 416: the part is as long as the file (or longer); 206 from another offset: not usable. Start again.
    await response.body?.cancel();
    response = await request(url, 0, signal);
  }
  if (!response.ok) {
    await response.body?.cancel();
    if (response.status >= 400 && response.status < 500) await rm(partial, { force: true });
    throw new DownloadError(`HTTP ${response.status}${response.statusText ? ` ${response.statusText}` : ''} for ${url}`);
  }

  const hash = createHash('sha256');
  let received = 0;
  if (resumed) {
    for await (const chunk of createReadStream(partial)) hash.update(chunk as Buffer);
    received = partSize;
  }
  const length = Number(response.headers.get('content-length') ?? NaN);
  const totalBytes = Number.isFinite(length) ? received + length : undefined;
  onProgress?.({ url, receivedBytes: received, totalBytes });
  const handle = await open(partial, resumed ? 'a' : 'w');
  try {
    if (response.body) {
      for await (const chunk of response.body as unknown as AsyncIterable<Uint8Array>) {
        hash.update(chunk);
        await handle.write(chunk);
        received += chunk.length;
        onProgress?.({ url, receivedBytes: received, totalBytes });
      }
    }
  } catch (cause) {
    throw new DownloadError(`download of ${url} was interrupted after ${received} bytes (the part is kept and will be resumed): ${(cause as Error).message}`, { cause });
  } finally {
    await handle.close();
  }
  if (totalBytes !== undefined && received !== totalBytes) {
    throw new DownloadError(`download of ${url} ended after ${received} of ${totalBytes} bytes (the part is kept and will be resumed)`);
  }
  const actual = hash.digest('hex');
  if (actual !== expected) {
    await rm(partial, { force: true });
    throw new DownloadError(`checksum mismatch for ${url}: expected sha256 ${expected}, found ${actual}; the download was deleted`);
  }
  await rename(partial, target);
  return { path: target, fromCache: false, resumed, bytes: received };
}

async function request(url: string, from: number, signal: AbortSignal | undefined): Promise<Response> {
  try {
    return await fetch(url, { headers: from > 0 ? { range: `bytes=${from}-` } : {}, signal, redirect: 'follow' });
  } catch (cause) {
    throw new DownloadError(`cannot reach ${url}: ${(cause as Error).message}`, { cause });
  }
}

/** First byte of a 206 response (`Content-Range: bytes START-END/TOTAL`), or -1. */
function rangeStart(response: Response): number {
  const match = /^bytes (\d+)-/.exec(response.headers.get('content-range') ?? '');
  return match ? Number(match[1]) : -1;
}
