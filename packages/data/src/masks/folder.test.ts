import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import * as path from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import sharp from 'sharp';
import { ConfigError, InputError } from '@s2cpnet/core';
import { encodePng } from '../image/codec';
import { FolderMaskProvider, labelsFromMaskImage } from './folder';
import { renderMaskView } from './render';
import type { LabelMap, RgbImage } from './types';

const root = mkdtempSync(path.join(tmpdir(), 's2cpnet-folder-'));
afterAll(() => rmSync(root, { recursive: true, force: true }));

function solid(width: number, height: number, color: [number, number, number]): RgbImage {
  const data = new Uint8Array(width * height * 3);
  for (let p = 0; p < width * height; p++) data.set(color, 3 * p);
  return { width, height, data };
}

/**
 * 8x6 mask: black background, a red block at x 0-2, a green block at x 4-5 (rows 0-2), and a second red block at
 * x 4-5 (rows 4-5) that touches no other red pixel.
 */
function maskFixture(): RgbImage {
  const mask = solid(8, 6, [0, 0, 0]);
  const paint = (x0: number, x1: number, y0: number, y1: number, c: [number, number, number]): void => {
    for (let y = y0; y <= y1; y++) for (let x = x0; x <= x1; x++) mask.data.set(c, 3 * (y * 8 + x));
  };
  paint(0, 2, 0, 5, [255, 0, 0]);
  paint(4, 5, 0, 2, [0, 255, 0]);
  paint(4, 5, 4, 5, [255, 0, 0]);
  return mask;
}

function labelAt(map: LabelMap, x: number, y: number): number {
  return map.labels[y * map.width + x]!;
}

describe('labelsFromMaskImage', () => {
  it('splits a mask into connected regions of equal colour, black as background', () => {
    const map = labelsFromMaskImage(maskFixture());
    expect(labelAt(map, 0, 0)).toBe(1);
    expect(labelAt(map, 2, 5)).toBe(1);
    expect(labelAt(map, 4, 0)).toBe(2);
    expect(labelAt(map, 4, 4)).toBe(3); // same colour as segment 1, but not connected to it
    expect(labelAt(map, 3, 0)).toBe(0);
    expect(labelAt(map, 7, 5)).toBe(0);
    expect(Math.max(...map.labels)).toBe(3);
  });

  it('treats every colour as a segment when there is no background colour', () => {
    const map = labelsFromMaskImage(maskFixture(), { backgroundColor: null });
    expect(labelAt(map, 3, 0)).toBeGreaterThan(0);
    expect(map.labels.every((label) => label > 0)).toBe(true);
  });

  it('joins slightly different colours within the tolerance (lossy masks)', () => {
    const mask = solid(4, 1, [100, 100, 100]);
    mask.data.set([104, 98, 100], 3);
    expect(Math.max(...labelsFromMaskImage(mask).labels)).toBe(3);
    expect(Math.max(...labelsFromMaskImage(mask, { colorTolerance: 5 }).labels)).toBe(1);
  });
});

describe('FolderMaskProvider', () => {
  const masksDir = path.join(root, 'masks');
  mkdirSync(masksDir, { recursive: true });
  writeFileSync(path.join(masksDir, 'scene_01.png'), encodePng(maskFixture()));

  it('finds the mask by image name whatever the image extension', async () => {
    const provider = new FolderMaskProvider({ dir: masksDir });
    const map = await provider.labelMap(solid(8, 6, [9, 9, 9]), '/data/images/scene_01.tif');
    expect(Math.max(...map.labels)).toBe(3);
    expect(await provider.maskFileFor('elsewhere/scene_01.jpg')).toBe(path.join(masksDir, 'scene_01.png'));
  });

  it('returns the mask image itself as the mask view', async () => {
    const view = await new FolderMaskProvider({ dir: masksDir }).readMaskView('images/scene_01.jpg');
    expect(Buffer.from(view.data).equals(Buffer.from(maskFixture().data))).toBe(true);
  });

  it('reads JPEG and TIFF masks, preferring PNG when several exist', async () => {
    const dir = path.join(root, 'formats');
    mkdirSync(dir);
    const raw = { raw: { width: 8, height: 6, channels: 3 as const } };
    await sharp(Buffer.from(solid(8, 6, [200, 200, 200]).data), raw).tiff().toFile(path.join(dir, 'a.tif'));
    await sharp(Buffer.from(solid(8, 6, [50, 50, 50]).data), raw).jpeg({ quality: 100 }).toFile(path.join(dir, 'b.jpg'));
    await sharp(Buffer.from(solid(8, 6, [70, 70, 70]).data), raw).jpeg({ quality: 100 }).toFile(path.join(dir, 'c.jpeg'));
    writeFileSync(path.join(dir, 'c.png'), encodePng(solid(8, 6, [1, 2, 3])));
    const provider = new FolderMaskProvider({ dir });
    expect([...(await provider.readMaskView('a.png')).data.subarray(0, 3)]).toEqual([200, 200, 200]);
    const jpeg = (await provider.readMaskView('b.png')).data;
    expect(Math.abs(jpeg[0]! - 50)).toBeLessThanOrEqual(2);
    expect([...(await provider.readMaskView('c.tif')).data.subarray(0, 3)]).toEqual([1, 2, 3]);
  });

  it('sees masks written after the folder was first listed', async () => {
    const dir = path.join(root, 'late');
    mkdirSync(dir);
    writeFileSync(path.join(dir, 'first.png'), encodePng(solid(2, 2, [5, 5, 5])));
    const provider = new FolderMaskProvider({ dir });
    await provider.readMaskView('first.jpg');
    writeFileSync(path.join(dir, 'second.png'), encodePng(solid(2, 2, [6, 6, 6])));
    expect((await provider.readMaskView('second.jpg')).data[0]).toBe(6);
  });

  it('fails with an InputError naming the image when its mask is missing', async () => {
    const provider = new FolderMaskProvider({ dir: masksDir });
    const attempt = provider.labelMap(solid(8, 6, [0, 0, 0]), 'images/missing_7.jpg');
    await expect(attempt).rejects.toBeInstanceOf(InputError);
    await expect(provider.readMaskView('images/missing_7.jpg')).rejects.toThrow(/images\/missing_7\.jpg.*no mask.*missing_7/);
  });

  it('fails with an InputError naming the mask file when the sizes differ', async () => {
    const provider = new FolderMaskProvider({ dir: masksDir });
    const attempt = provider.labelMap(solid(10, 6, [0, 0, 0]), 'images/scene_01.jpg');
    await expect(attempt).rejects.toSatisfy(
      (error: unknown) =>
        error instanceof InputError &&
        error.file === path.join(masksDir, 'scene_01.png') &&
        /8x6 but its image .* is 10x6/.test(error.message),
    );
  });

  it('fails clearly when the folder does not exist or is not given', async () => {
    const provider = new FolderMaskProvider({ dir: path.join(root, 'nope') });
    await expect(provider.readMaskView('x.png')).rejects.toThrow(/nope.*cannot read the mask folder/);
    expect(() => new FolderMaskProvider({ dir: '' })).toThrow(ConfigError);
    expect(() => new FolderMaskProvider({ dir: masksDir, colorTolerance: 300 })).toThrow(/colorTolerance/);
  });

  it('reads rendered mask views back into the segments they were rendered from', async () => {
    // Three stripes labelled 1, 2, 3 with distinct mean colours; the renderer draws black borders between them.
    const width = 12;
    const height = 5;
    const labels = new Int32Array(width * height);
    const image = solid(width, height, [0, 0, 0]);
    for (let p = 0; p < width * height; p++) {
      const label = 1 + Math.floor((p % width) / 4);
      labels[p] = label;
      image.data.set([label * 60, 100, 255 - label * 50], 3 * p);
    }
    const source: LabelMap = { width, height, labels };
    const dir = path.join(root, 'rendered');
    mkdirSync(dir);
    writeFileSync(path.join(dir, 'stripes.png'), encodePng(renderMaskView(image, source)));
    const recovered = await new FolderMaskProvider({ dir }).labelMap(image, 'stripes.tif');
    // Every recovered segment lies inside one source segment; only border pixels became background.
    const sourceOf = new Map<number, number>();
    let background = 0;
    for (let p = 0; p < width * height; p++) {
      const label = recovered.labels[p]!;
      if (label === 0) {
        background++;
        continue;
      }
      if (!sourceOf.has(label)) sourceOf.set(label, labels[p]!);
      expect(sourceOf.get(label)).toBe(labels[p]);
    }
    expect(sourceOf.size).toBe(3);
    expect(background).toBe(2 * height); // the two 1-px seams
  });
});
