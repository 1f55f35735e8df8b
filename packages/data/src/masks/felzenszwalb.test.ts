import { describe, expect, it } from 'vitest';
import { ConfigError, S2CPNetError, SeededRng } from '@s2cpnet/core';
import { benchmarkImage, benchmarkSegmenter } from './bench';
import { FELZENSZWALB_DEFAULTS, FelzenszwalbSegmenter, segmentFelzenszwalb } from './felzenszwalb';
import type { LabelMap, RgbImage } from './types';

/** Four flat quadrants of clearly different colours with +-8 noise. */
function quadrantImage(size: number, seed = 1): RgbImage {
  const rng = new SeededRng(seed);
  const colors = [
    [200, 40, 40],
    [40, 180, 60],
    [40, 60, 200],
    [220, 220, 220],
  ];
  const data = new Uint8Array(size * size * 3);
  for (let y = 0; y < size; y++) {
    for (let x = 0; x < size; x++) {
      const quadrant = (y < size / 2 ? 0 : 2) + (x < size / 2 ? 0 : 1);
      for (let c = 0; c < 3; c++) {
        data[3 * (y * size + x) + c] = Math.max(0, Math.min(255, colors[quadrant]![c]! + Math.round((rng.next() * 2 - 1) * 8)));
      }
    }
  }
  return { width: size, height: size, data };
}

function noiseImage(width: number, height: number, seed: number): RgbImage {
  const rng = new SeededRng(seed);
  const data = new Uint8Array(width * height * 3);
  for (let i = 0; i < data.length; i++) data[i] = rng.int(256);
  return { width, height, data };
}

function segmentSizes(map: LabelMap): Int32Array {
  let max = 0;
  for (const label of map.labels) max = Math.max(max, label);
  const sizes = new Int32Array(max + 1);
  for (const label of map.labels) sizes[label]!++;
  return sizes;
}

/** Labels are 1..S, every one of them used, no background: the segmenter covers the whole image. */
function expectCoveringLabels(map: LabelMap, width: number, height: number): number {
  expect(map.width).toBe(width);
  expect(map.height).toBe(height);
  expect(map.labels.length).toBe(width * height);
  const sizes = segmentSizes(map);
  expect(sizes[0]).toBe(0);
  for (let label = 1; label < sizes.length; label++) expect(sizes[label]).toBeGreaterThan(0);
  return sizes.length - 1;
}

describe('segmentFelzenszwalb', () => {
  it('finds the four quadrants of a noisy four-colour image', () => {
    const size = 96;
    const map = segmentFelzenszwalb(quadrantImage(size));
    expect(expectCoveringLabels(map, size, size)).toBe(4);
    // Each quadrant is one segment (away from the blurred 2-px seam), and the four segments differ.
    const half = size / 2;
    const seam = 2;
    const quadrantLabels = new Set<number>();
    for (const [qx, qy] of [
      [0, 0],
      [1, 0],
      [0, 1],
      [1, 1],
    ]) {
      const first = map.labels[(qy * half + half / 2) * size + qx * half + half / 2]!;
      let mismatches = 0;
      for (let y = qy * half; y < (qy + 1) * half; y++) {
        for (let x = qx * half; x < (qx + 1) * half; x++) {
          const nearSeam = Math.abs(x + 0.5 - half) < seam || Math.abs(y + 0.5 - half) < seam;
          if (!nearSeam && map.labels[y * size + x] !== first) mismatches++;
        }
      }
      expect(mismatches).toBe(0);
      quadrantLabels.add(first);
    }
    expect(quadrantLabels.size).toBe(4);
  });

  it('labels segments in raster order of their first pixel', () => {
    const map = segmentFelzenszwalb(quadrantImage(64));
    let seen = 0;
    let outOfOrder = 0;
    for (const label of map.labels) {
      if (label > seen + 1) outOfOrder++;
      seen = Math.max(seen, label);
    }
    expect(outOfOrder).toBe(0);
    expect(seen).toBe(4);
  });

  it('is deterministic: same image and options give identical labels, across instances', async () => {
    const image = benchmarkImage(128, 3);
    const a = segmentFelzenszwalb(image);
    // A call on another size in between must not leak state through the reused workspace.
    segmentFelzenszwalb(noiseImage(50, 30, 9));
    const b = await new FelzenszwalbSegmenter().labelMap(image, 'x.png');
    expect(Buffer.from(b.labels.buffer).equals(Buffer.from(a.labels.buffer))).toBe(true);
  });

  it('gives a sane number of segments on a synthetic aerial scene', () => {
    const map = segmentFelzenszwalb(benchmarkImage(256, 7));
    const segments = expectCoveringLabels(map, 256, 256);
    // Defaults target tens of segments at 256 px: never one blob, never texture confetti.
    expect(segments).toBeGreaterThanOrEqual(5);
    expect(segments).toBeLessThanOrEqual(300);
  });

  it.each([1, 20, 100, 400])('never leaves a segment smaller than minSize = %i', (minSize) => {
    const image = noiseImage(80, 60, minSize);
    const map = segmentFelzenszwalb(image, { minSize, scale: 50, sigma: 0.5 });
    const segments = expectCoveringLabels(map, 80, 60);
    const sizes = segmentSizes(map);
    for (let label = 1; label <= segments; label++) expect(sizes[label]).toBeGreaterThanOrEqual(minSize);
    // Pure noise with a small scale breaks into many segments, so the bound is what limits their number.
    expect(segments).toBeLessThanOrEqual(Math.floor((80 * 60) / minSize));
    if (minSize === 100) expect(segments).toBeGreaterThan(10);
  });

  it('merges everything into one segment on a flat image', () => {
    const image: RgbImage = { width: 40, height: 30, data: new Uint8Array(40 * 30 * 3).fill(77) };
    const map = segmentFelzenszwalb(image, { sigma: 0 });
    expect(expectCoveringLabels(map, 40, 30)).toBe(1);
  });

  it('produces fewer segments with a larger scale', () => {
    const image = benchmarkImage(128, 11);
    const fine = expectCoveringLabels(segmentFelzenszwalb(image, { scale: 50, minSize: 10 }), 128, 128);
    const coarse = expectCoveringLabels(segmentFelzenszwalb(image, { scale: 2000, minSize: 10 }), 128, 128);
    expect(coarse).toBeLessThan(fine);
  });

  it('handles thin and empty images', () => {
    expect(expectCoveringLabels(segmentFelzenszwalb(noiseImage(1, 37, 2), { minSize: 5 }), 1, 37)).toBeGreaterThanOrEqual(1);
    expect(expectCoveringLabels(segmentFelzenszwalb(noiseImage(37, 1, 2), { minSize: 5 }), 37, 1)).toBeGreaterThanOrEqual(1);
    expect(segmentFelzenszwalb({ width: 0, height: 0, data: new Uint8Array(0) }).labels.length).toBe(0);
  });

  it('rejects bad options with the option named', () => {
    expect(() => new FelzenszwalbSegmenter({ scale: -1 })).toThrow(ConfigError);
    expect(() => new FelzenszwalbSegmenter({ sigma: Number.NaN })).toThrow(/\$\.sigma/);
    expect(() => new FelzenszwalbSegmenter({ minSize: 2.5 })).toThrow(/\$\.minSize.*2\.5/);
  });

  it('rejects an image whose byte count does not match its size', async () => {
    const bad: RgbImage = { width: 10, height: 10, data: new Uint8Array(299) };
    await expect(new FelzenszwalbSegmenter().labelMap(bad, 'bad.png')).rejects.toSatisfy(
      (error: unknown) => S2CPNetError.isInstance(error) && /300 bytes.*found 299/.test((error as Error).message),
    );
  });

  it('names its cache key after every setting that changes its output', () => {
    const a = new FelzenszwalbSegmenter();
    const b = new FelzenszwalbSegmenter({ minSize: FELZENSZWALB_DEFAULTS.minSize + 1 });
    const c = new FelzenszwalbSegmenter({ sigma: 0.5 });
    expect(new Set([a.cacheKey, b.cacheKey, c.cacheKey]).size).toBe(3);
    expect(new FelzenszwalbSegmenter({ ...FELZENSZWALB_DEFAULTS }).cacheKey).toBe(a.cacheKey);
  });
});

describe('benchmarkSegmenter', () => {
  it('reports a finite median over the requested runs', () => {
    const result = benchmarkSegmenter({ runs: 3 });
    expect(result.runs).toBe(3);
    expect(result.images).toBe(1);
    expect(result.medianMs).toBeGreaterThan(0);
    expect(result.minMs).toBeLessThanOrEqual(result.medianMs);
    expect(result.maxMs).toBeGreaterThanOrEqual(result.medianMs);
    expect(Number.isFinite(result.medianCpuMs) && result.medianCpuMs >= 0).toBe(true);
    // The target is 50 ms on one core; this bound only catches a pathological slowdown on a busy CI machine.
    expect(result.medianMs).toBeLessThan(1000);
    expect(result.meanSegments).toBeGreaterThan(1);
  });
});
