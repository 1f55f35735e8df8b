import { existsSync, mkdirSync, mkdtempSync, readdirSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import * as path from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { ConfigError } from '@s2cpnet/core';
import { benchmarkImage } from './bench';
import { MaskCache } from './cache';
import { decodeImageFile, encodePng } from '../image/codec';
import { FelzenszwalbSegmenter } from './felzenszwalb';
import { FolderMaskProvider } from './folder';
import type { MaskProvider } from './provider';
import { renderMaskView } from './render';
import type { LabelMap, RgbImage } from './types';

const root = mkdtempSync(path.join(tmpdir(), 's2cpnet-cache-'));
afterAll(() => rmSync(root, { recursive: true, force: true }));

/** Wraps a provider and counts how often it is asked for a label map. */
class CountingProvider implements MaskProvider {
  calls = 0;
  readonly name: string;
  readonly cacheKey?: string;
  constructor(private readonly inner: MaskProvider) {
    this.name = inner.name;
    this.cacheKey = inner.cacheKey;
  }
  labelMap(image: RgbImage, file: string): Promise<LabelMap> {
    this.calls++;
    return this.inner.labelMap(image, file);
  }
}

function bytesEqual(a: RgbImage, b: RgbImage): boolean {
  return a.width === b.width && a.height === b.height && Buffer.from(a.data).equals(Buffer.from(b.data));
}

describe('MaskCache', () => {
  const image = benchmarkImage(64, 5);

  it('computes a mask once, then reads it from disk (also from a new cache instance)', async () => {
    const dir = path.join(root, 'once');
    const provider = new CountingProvider(new FelzenszwalbSegmenter({ minSize: 20 }));
    const cache = new MaskCache({ dir, provider, keyBy: 'name' });
    const first = await cache.get(image, '/data/images/0001.png');
    const second = await cache.get(image, '/data/images/0001.png');
    expect(provider.calls).toBe(1);
    expect(cache.stats).toEqual({ hits: 1, computed: 1 });
    const again = await new MaskCache({ dir, provider, keyBy: 'name' }).get(image, 'other/place/0001.jpg');
    expect(provider.calls).toBe(1);
    expect(bytesEqual(first, second)).toBe(true);
    expect(bytesEqual(first, again)).toBe(true);
    // The view is the rendered label map, stored as a PNG at fileFor().
    const expected = renderMaskView(image, await new FelzenszwalbSegmenter({ minSize: 20 }).labelMap(image, ''));
    expect(bytesEqual(first, expected)).toBe(true);
    expect(bytesEqual(await decodeImageFile(cache.fileFor('0001.png')), expected)).toBe(true);
    // Atomic writes leave no temp files behind.
    expect(readdirSync(path.dirname(cache.fileFor('0001.png')))).toEqual(['0001.png']);
  });

  it('shares one computation between concurrent requests for the same image', async () => {
    const provider = new CountingProvider(new FelzenszwalbSegmenter());
    const cache = new MaskCache({ dir: path.join(root, 'concurrent'), provider, keyBy: 'name' });
    const views = await Promise.all([1, 2, 3].map(() => cache.get(image, 'a/7.png')));
    expect(provider.calls).toBe(1);
    expect(bytesEqual(views[0]!, views[2]!)).toBe(true);
  });

  it('keeps masks made with other settings apart', async () => {
    const dir = path.join(root, 'settings');
    const coarse = new CountingProvider(new FelzenszwalbSegmenter({ scale: 2000 }));
    const fine = new CountingProvider(new FelzenszwalbSegmenter({ scale: 20, minSize: 5 }));
    const a = await new MaskCache({ dir, provider: coarse, keyBy: 'name' }).get(image, '3.png');
    const b = await new MaskCache({ dir, provider: fine, keyBy: 'name' }).get(image, '3.png');
    const c = await new MaskCache({ dir, provider: fine, render: { drawBorders: false }, keyBy: 'name' }).get(image, '3.png');
    expect(fine.calls).toBe(2);
    expect(bytesEqual(a, b)).toBe(false);
    expect(bytesEqual(b, c)).toBe(false);
    expect(readdirSync(dir)).toHaveLength(3);
  });

  it('recomputes a cached mask whose size no longer matches the image', async () => {
    const dir = path.join(root, 'resized');
    const provider = new CountingProvider(new FelzenszwalbSegmenter());
    const cache = new MaskCache({ dir, provider, keyBy: 'name' });
    await cache.get(image, '9.png');
    const bigger = benchmarkImage(80, 5);
    const view = await cache.get(bigger, '9.png');
    expect(provider.calls).toBe(2);
    expect(view.width).toBe(80);
    expect((await decodeImageFile(cache.fileFor('9.png'))).width).toBe(80);
  });

  it('recomputes an unreadable cache entry', async () => {
    const dir = path.join(root, 'corrupt');
    const provider = new CountingProvider(new FelzenszwalbSegmenter());
    const cache = new MaskCache({ dir, provider, keyBy: 'name' });
    mkdirSync(path.dirname(cache.fileFor('4.png')), { recursive: true });
    writeFileSync(cache.fileFor('4.png'), 'truncated');
    const view = await cache.get(image, '4.png');
    expect(provider.calls).toBe(1);
    expect(bytesEqual(await decodeImageFile(cache.fileFor('4.png')), view)).toBe(true);
  });

  it('reads finished views straight from a mask folder without writing a copy', async () => {
    const masks = path.join(root, 'folder-masks');
    mkdirSync(masks);
    const maskImage = renderMaskView(image, await new FelzenszwalbSegmenter().labelMap(image, ''));
    writeFileSync(path.join(masks, '12.png'), encodePng(maskImage));
    const dir = path.join(root, 'folder-cache');
    const cache = new MaskCache({ dir, provider: new FolderMaskProvider({ dir: masks }) });
    expect(bytesEqual(await cache.get(image, 'images/12.tif'), maskImage)).toBe(true);
    expect(existsSync(dir)).toBe(false);
    await expect(cache.get(benchmarkImage(32, 5), 'images/12.tif')).rejects.toThrow(/64x64 but the image is 32x32/);
  });

  it('rejects a malformed image with a rejected promise', async () => {
    const cache = new MaskCache({ dir: path.join(root, 'bad'), provider: new FelzenszwalbSegmenter() });
    await expect(cache.get({ width: 4, height: 4, data: new Uint8Array(5) }, '1.png')).rejects.toThrow(/MaskCache\.get.*48 bytes/);
  });

  it('rejects a missing folder or provider', () => {
    expect(() => new MaskCache({ dir: '', provider: new FelzenszwalbSegmenter() })).toThrow(ConfigError);
    expect(() => new MaskCache({ dir: root, provider: {} as MaskProvider })).toThrow(/\$\.provider/);
  });
});
