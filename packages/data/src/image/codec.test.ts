import { mkdtempSync, readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import sharp from 'sharp';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { RgbImage } from '../masks/types';
import { decodeImageBuffer, decodeImageFile, encodePng } from './codec';
import { resizeBilinear } from './transform';
import { sharedPath, skippedBecause } from '../../../../scripts/shared-dir';

const tmp = mkdtempSync(path.join(os.tmpdir(), 's2cpnet-codec-'));
afterAll(() => rmSync(tmp, { recursive: true, force: true }));

/** A deterministic test picture: a colour gradient with a square, so orientation and channels are checkable. */
function gradient(width: number, height: number): RgbImage {
  const data = new Uint8Array(width * height * 3);
  for (let y = 0; y < height; y++) {
    for (let x = 0; x < width; x++) {
      const o = (y * width + x) * 3;
      data[o] = Math.round((255 * x) / (width - 1));
      data[o + 1] = Math.round((255 * y) / (height - 1));
      data[o + 2] = x > width / 4 && x < width / 2 && y > height / 4 && y < height / 2 ? 255 : 40;
    }
  }
  return { width, height, data };
}

function raw(image: RgbImage, channels = 3) {
  return sharp(Buffer.from(image.data), { raw: { width: image.width, height: image.height, channels: channels as 3 } });
}

function maxDifference(a: Uint8Array, b: Uint8Array): number {
  let max = 0;
  for (let i = 0; i < a.length; i++) max = Math.max(max, Math.abs(a[i]! - b[i]!));
  return max;
}

const picture = gradient(40, 30);

beforeAll(async () => {
  await raw(picture).png().toFile(path.join(tmp, 'rgb.png'));
  await raw(picture).tiff({ compression: 'none' }).toFile(path.join(tmp, 'rgb.tif'));
  await raw(picture).tiff({ compression: 'lzw' }).toFile(path.join(tmp, 'lzw.tif'));
  await raw(picture).jpeg({ quality: 95, chromaSubsampling: '4:4:4' }).toFile(path.join(tmp, 'rgb.jpg'));
  // Grey, grey+alpha, RGBA and 16-bit files must all come out as 8-bit RGB.
  const grey = Buffer.alloc(40 * 30, 0).map((_, i) => i % 256);
  await sharp(grey, { raw: { width: 40, height: 30, channels: 1 } }).png().toFile(path.join(tmp, 'grey.png'));
  await sharp(grey, { raw: { width: 40, height: 30, channels: 1 } }).jpeg().toFile(path.join(tmp, 'grey.jpg'));
  const rgba = Buffer.alloc(40 * 30 * 4);
  for (let p = 0; p < 40 * 30; p++) rgba.set([picture.data[3 * p]!, picture.data[3 * p + 1]!, picture.data[3 * p + 2]!, p % 2 ? 0 : 255], 4 * p);
  await sharp(rgba, { raw: { width: 40, height: 30, channels: 4 } }).png().toFile(path.join(tmp, 'rgba.png'));
  await raw(picture).toColourspace('rgb16').png().toFile(path.join(tmp, 'deep.png'));
  const png = readFileSync(path.join(tmp, 'rgb.png'));
  writeFileSync(path.join(tmp, 'truncated.png'), png.subarray(0, Math.floor(png.length / 2)));
  const jpg = readFileSync(path.join(tmp, 'rgb.jpg'));
  writeFileSync(path.join(tmp, 'truncated.jpg'), jpg.subarray(0, Math.floor(jpg.length / 2)));
  writeFileSync(path.join(tmp, 'text.jpg'), 'this is not an image');
  writeFileSync(path.join(tmp, 'empty.png'), '');
});

describe('decodeImageFile', () => {
  it.each(['rgb.png', 'rgb.tif', 'lzw.tif'])('decodes %s losslessly', async (name) => {
    const image = await decodeImageFile(path.join(tmp, name));
    expect([image.width, image.height]).toEqual([40, 30]);
    expect(Buffer.from(image.data).equals(Buffer.from(picture.data))).toBe(true);
  });

  it('decodes a JPEG close to the original', async () => {
    const image = await decodeImageFile(path.join(tmp, 'rgb.jpg'));
    expect([image.width, image.height]).toEqual([40, 30]);
    expect(maxDifference(image.data, picture.data)).toBeLessThan(40);
  });

  it('expands grey to three equal channels', async () => {
    for (const name of ['grey.png', 'grey.jpg']) {
      const image = await decodeImageFile(path.join(tmp, name));
      expect(image.data.length).toBe(40 * 30 * 3);
      for (let p = 0; p < 40 * 30; p += 37) {
        expect(image.data[3 * p]).toBe(image.data[3 * p + 1]);
        expect(image.data[3 * p + 1]).toBe(image.data[3 * p + 2]);
      }
    }
    const png = await decodeImageFile(path.join(tmp, 'grey.png'));
    expect(png.data[3 * 100]).toBe(100);
  });

  it('drops alpha without blending and reduces 16-bit to 8-bit', async () => {
    const rgba = await decodeImageFile(path.join(tmp, 'rgba.png'));
    expect(Buffer.from(rgba.data).equals(Buffer.from(picture.data))).toBe(true);
    const deep = await decodeImageFile(path.join(tmp, 'deep.png'));
    expect(deep.data.length).toBe(40 * 30 * 3);
    expect(maxDifference(deep.data, picture.data)).toBeLessThanOrEqual(1);
  });

  it.each([
    ['missing.png', /missing\.png: image file not found/],
    ['empty.png', /empty\.png: image file is empty/],
    ['text.jpg', /text\.jpg: cannot decode image .*expected a readable TIFF, JPEG or PNG file/],
    ['truncated.png', /truncated\.png: cannot decode image/],
    ['truncated.jpg', /truncated\.jpg: cannot decode image/],
  ])('rejects %s with an InputError naming the file', async (name, message) => {
    await expect(decodeImageFile(path.join(tmp, name))).rejects.toMatchObject({ code: 'INPUT', file: path.join(tmp, name) });
    await expect(decodeImageFile(path.join(tmp, name))).rejects.toThrow(message);
  });

  it('rejects a folder', async () => {
    await expect(decodeImageFile(tmp)).rejects.toThrow(/expected an image file, found a folder/);
  });
});

describe('encodePng', () => {
  it('round-trips through a PNG decoder exactly and is deterministic', async () => {
    const bytes = encodePng(picture);
    expect(Array.from(bytes.subarray(0, 8))).toEqual([0x89, 0x50, 0x4e, 0x47, 0x0d, 0x0a, 0x1a, 0x0a]);
    const back = await decodeImageBuffer(bytes, 'encoded.png');
    expect([back.width, back.height]).toEqual([40, 30]);
    expect(Buffer.from(back.data).equals(Buffer.from(picture.data))).toBe(true);
    expect(Buffer.from(encodePng(picture)).equals(Buffer.from(bytes))).toBe(true);
    // sharp's own reader checks the CRCs and the zlib stream.
    const meta = await sharp(Buffer.from(bytes)).metadata();
    expect(meta).toMatchObject({ format: 'png', width: 40, height: 30, channels: 3 });
  });

  it('refuses a malformed image', () => {
    expect(() => encodePng({ width: 2, height: 2, data: new Uint8Array(5) })).toThrow(/width\*height\*3 bytes/);
    expect(() => encodePng({ width: 0, height: 2, data: new Uint8Array(0) })).toThrow(RangeError);
  });
});

const TIF = sharedPath('testdata/ucm-tif') ?? '';

describe.skipIf(TIF === '')(`original UC Merced TIFFs${TIF === '' ? ` (${skippedBecause('testdata/ucm-tif')})` : ''}`, () => {
  it('decodes all 12, including the 253-pixel ones, and measures decode + resize throughput', async () => {
    const files = readdirSync(TIF).filter((name) => name.endsWith('.tif')).map((name) => path.join(TIF, name));
    expect(files).toHaveLength(12);
    const sizes = new Set<string>();
    const start = performance.now();
    for (const file of files) {
      const image = await decodeImageFile(file);
      sizes.add(`${image.width}x${image.height}`);
      const input = resizeBilinear(image, 224, 224);
      expect(input.data.length).toBe(224 * 224 * 3);
      // Real photos: not blank, not a single colour.
      expect(maxDifference(image.data, new Uint8Array(image.data.length).fill(image.data[0]!))).toBeGreaterThan(50);
    }
    const perImage = (performance.now() - start) / files.length;
    expect([...sizes].sort()).toEqual(['253x256', '256x253', '256x256']);
    if (!process.env.S2CPNET_QUIET) console.log(`decode + resize to 224: ${perImage.toFixed(1)} ms per TIFF`);
  });
});
