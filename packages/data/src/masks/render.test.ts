import { describe, expect, it } from 'vitest';
import { ShapeError } from '@s2cpnet/core';
import { renderMaskView, renderOptionsKey } from './render';
import type { LabelMap, RgbImage } from './types';

/** 6x4 image: left half (x < 3) label 1, right half label 2, bottom row of the right half label 0. */
function fixture(): { image: RgbImage; labels: LabelMap } {
  const width = 6;
  const height = 4;
  const data = new Uint8Array(width * height * 3);
  const labels = new Int32Array(width * height);
  for (let y = 0; y < height; y++) {
    for (let x = 0; x < width; x++) {
      const p = y * width + x;
      labels[p] = x < 3 ? 1 : y === height - 1 ? 0 : 2;
      // Left half alternates red 100/200 (mean 150); right half is green 60 or 90 by row (mean 75 over rows 0-2).
      if (x < 3) data.set([(x + y) % 2 === 0 ? 100 : 200, 10, 20], 3 * p);
      else data.set([5, y % 2 === 0 ? 60 : 90, 7], 3 * p);
    }
  }
  return { image: { width, height, data }, labels: { width, height, labels } };
}

function pixel(image: RgbImage, x: number, y: number): number[] {
  const p = 3 * (y * image.width + x);
  return [...image.data.subarray(p, p + 3)];
}

describe('renderMaskView', () => {
  it('keeps the image size and fills segments with their mean colour', () => {
    const { image, labels } = fixture();
    const view = renderMaskView(image, labels, { drawBorders: false });
    expect(view.width).toBe(6);
    expect(view.height).toBe(4);
    expect(view.data.length).toBe(6 * 4 * 3);
    // Left half: 12 pixels, 6 at 100 and 6 at 200 -> 150.
    expect(pixel(view, 0, 0)).toEqual([150, 10, 20]);
    expect(pixel(view, 2, 3)).toEqual([150, 10, 20]);
    // Right half rows 0-2: green 60, 90, 60 -> 70.
    expect(pixel(view, 4, 1)).toEqual([5, 70, 7]);
    // Background (label 0) is black by default.
    expect(pixel(view, 5, 3)).toEqual([0, 0, 0]);
  });

  it('draws 1-px borders on pixels whose right or lower neighbour is another segment', () => {
    const { image, labels } = fixture();
    const view = renderMaskView(image, labels, { borderColor: [1, 2, 3], backgroundColor: [250, 250, 250] });
    for (let y = 0; y < 4; y++) expect(pixel(view, 2, y)).toEqual([1, 2, 3]); // left of the vertical seam
    for (let y = 0; y < 2; y++) expect(pixel(view, 3, y)).toEqual([5, 70, 7]); // right of the seam: one-sided, no border
    expect(pixel(view, 1, 1)).toEqual([150, 10, 20]); // interior untouched
    expect(pixel(view, 4, 2)).toEqual([1, 2, 3]); // above the background row
    expect(pixel(view, 4, 1)).toEqual([5, 70, 7]);
    expect(pixel(view, 5, 3)).toEqual([250, 250, 250]); // background, last row: no neighbour below
  });

  it('uses only segment means, border and background colours', () => {
    const { image, labels } = fixture();
    const view = renderMaskView(image, labels);
    const colours = new Set<string>();
    for (let p = 0; p < 24; p++) colours.add(pixel(view, p % 6, Math.floor(p / 6)).join(','));
    expect([...colours].sort()).toEqual(['0,0,0', '150,10,20', '5,70,7']);
  });

  it('rejects a label map of another size', () => {
    const { image } = fixture();
    const labels: LabelMap = { width: 5, height: 4, labels: new Int32Array(20) };
    expect(() => renderMaskView(image, labels)).toThrow(ShapeError);
    expect(() => renderMaskView(image, labels)).toThrow(/5x4 but the image is 6x4/);
  });

  it('distinguishes render settings in its cache key', () => {
    expect(renderOptionsKey()).not.toBe(renderOptionsKey({ drawBorders: false }));
    expect(renderOptionsKey()).toBe(renderOptionsKey({ borderColor: [0, 0, 0] }));
  });
});
