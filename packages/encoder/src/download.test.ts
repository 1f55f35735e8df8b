import { createHash } from 'node:crypto';
import { createServer, type IncomingMessage, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { mkdtemp, readdir, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { DownloadError, InputError } from '@s2cpnet/core';
import { afterAll, afterEach, beforeAll, beforeEach, describe, expect, it } from 'vitest';
import { downloadFile, type DownloadProgress } from './download';

/** 300 KB of deterministic bytes, served in 16 KB chunks. */
const CONTENT = Buffer.from(Array.from({ length: 300 * 1024 }, (_, i) => (i * 7919 + (i >> 8)) % 256));
const SHA256 = createHash('sha256').update(CONTENT).digest('hex');

interface Seen {
  path: string;
  range: string | undefined;
}

let server: Server;
let base: string;
let seen: Seen[] = [];
let cacheDir: string;

function send(res: import('node:http').ServerResponse, status: number, body: Buffer, headers: Record<string, string> = {}): void {
  res.writeHead(status, { 'content-length': String(body.length), ...headers });
  let offset = 0;
  const pump = () => {
    while (offset < body.length) {
      const chunk = body.subarray(offset, offset + 16 * 1024);
      offset += chunk.length;
      if (!res.write(chunk)) return void res.once('drain', pump);
    }
    res.end();
  };
  pump();
}

beforeAll(async () => {
  server = createServer((req: IncomingMessage, res) => {
    const range = req.headers.range;
    seen.push({ path: req.url ?? '', range });
    if (req.url === '/weights.bin') {
      const match = /^bytes=(\d+)-$/.exec(range ?? '');
      if (match) {
        const start = Number(match[1]);
        if (start >= CONTENT.length) return send(res, 416, Buffer.alloc(0), { 'content-range': `bytes */${CONTENT.length}` });
        return send(res, 206, CONTENT.subarray(start), { 'content-range': `bytes ${start}-${CONTENT.length - 1}/${CONTENT.length}` });
      }
      return send(res, 200, CONTENT);
    }
    if (req.url === '/no-ranges.bin') return send(res, 200, CONTENT); // ignores Range headers
    return send(res, 404, Buffer.from('not here'));
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  base = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
});

afterAll(() => new Promise<void>((resolve) => server.close(() => resolve())));

beforeEach(async () => {
  seen = [];
  cacheDir = await mkdtemp(join(tmpdir(), 's2cpnet-download-'));
});

afterEach(() => rm(cacheDir, { recursive: true, force: true }));

describe('downloadFile', () => {
  it('downloads, verifies, reports progress, and then reuses the cached file without a request', async () => {
    const progress: DownloadProgress[] = [];
    const result = await downloadFile({ url: `${base}/weights.bin`, sha256: SHA256, cacheDir, onProgress: (p) => progress.push(p) });
    expect(result).toEqual({ path: join(cacheDir, 'weights.bin'), fromCache: false, resumed: false, bytes: CONTENT.length });
    expect((await readFile(result.path)).equals(CONTENT)).toBe(true);
    expect(await readdir(cacheDir)).toEqual(['weights.bin']); // no .part left behind
    expect(progress.length).toBeGreaterThan(2);
    expect(progress[0]).toEqual({ url: `${base}/weights.bin`, receivedBytes: 0, totalBytes: CONTENT.length });
    expect(progress.at(-1)!.receivedBytes).toBe(CONTENT.length);
    for (let i = 1; i < progress.length; i++) expect(progress[i]!.receivedBytes).toBeGreaterThanOrEqual(progress[i - 1]!.receivedBytes);
    expect(seen).toHaveLength(1);

    const again = await downloadFile({ url: `${base}/weights.bin`, sha256: SHA256.toUpperCase(), cacheDir });
    expect(again).toEqual({ path: result.path, fromCache: true, resumed: false, bytes: CONTENT.length });
    expect(seen).toHaveLength(1); // no second request
  });

  it('resumes a partial download with a range request', async () => {
    await writeFile(join(cacheDir, 'weights.bin.part'), CONTENT.subarray(0, 100_000));
    const progress: DownloadProgress[] = [];
    const result = await downloadFile({ url: `${base}/weights.bin`, sha256: SHA256, cacheDir, onProgress: (p) => progress.push(p) });
    expect(seen).toEqual([{ path: '/weights.bin', range: 'bytes=100000-' }]);
    expect(result.resumed).toBe(true);
    expect(progress[0]!.receivedBytes).toBe(100_000);
    expect((await readFile(result.path)).equals(CONTENT)).toBe(true);
  });

  it('downloads again from the start when the server ignores the range', async () => {
    await writeFile(join(cacheDir, 'no-ranges.bin.part'), Buffer.alloc(50_000, 0xaa));
    const result = await downloadFile({ url: `${base}/no-ranges.bin`, sha256: SHA256, cacheDir });
    expect(seen[0]!.range).toBe('bytes=50000-');
    expect(result.resumed).toBe(false);
    expect((await readFile(result.path)).equals(CONTENT)).toBe(true);
    expect(await readdir(cacheDir)).toEqual(['no-ranges.bin']);
  });

  it('replaces a corrupt cached file', async () => {
    await writeFile(join(cacheDir, 'weights.bin'), Buffer.from('stale'));
    const result = await downloadFile({ url: `${base}/weights.bin`, sha256: SHA256, cacheDir });
    expect(result.fromCache).toBe(false);
    expect(seen).toHaveLength(1);
    expect((await readFile(result.path)).equals(CONTENT)).toBe(true);
  });

  it('a checksum mismatch throws a DownloadError and leaves no file in the cache', async () => {
    const wrong = 'ab'.repeat(32);
    const error = await downloadFile({ url: `${base}/weights.bin`, sha256: wrong, cacheDir }).catch((e: unknown) => e);
    expect(error).toBeInstanceOf(DownloadError);
    expect((error as Error).message).toContain(`checksum mismatch for ${base}/weights.bin: expected sha256 ${wrong}, found ${SHA256}`);
    expect(await readdir(cacheDir)).toEqual([]);
    // A corrupt partial that gets "resumed" fails the same way and is removed too.
    await writeFile(join(cacheDir, 'weights.bin.part'), Buffer.alloc(1000, 1));
    await expect(downloadFile({ url: `${base}/weights.bin`, sha256: SHA256, cacheDir })).rejects.toThrow(DownloadError);
    expect(await readdir(cacheDir)).toEqual([]);
  });

  it('HTTP 404 gives a clear DownloadError and no file', async () => {
    const error = await downloadFile({ url: `${base}/missing.bin`, sha256: SHA256, cacheDir }).catch((e: unknown) => e);
    expect(error).toBeInstanceOf(DownloadError);
    expect((error as Error).message).toBe(`HTTP 404 Not Found for ${base}/missing.bin`);
    expect(await readdir(cacheDir)).toEqual([]);
  });

  it('rejects bad arguments', async () => {
    await expect(downloadFile({ url: `${base}/weights.bin`, sha256: 'abc', cacheDir })).rejects.toThrow(InputError);
    await expect(downloadFile({ url: 'ftp://example.org/x', sha256: SHA256, cacheDir })).rejects.toThrow(/only http and https/);
    await expect(downloadFile({ url: `${base}/weights.bin`, sha256: SHA256, cacheDir, fileName: '../escape.bin' })).rejects.toThrow(/plain file name/);
    expect(seen).toHaveLength(0);
  });
});
