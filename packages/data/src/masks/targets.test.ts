import { mkdtempSync, rmSync } from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { MaskCache } from './cache';
import { FelzenszwalbSegmenter, segmentFelzenszwalb } from './felzenszwalb';
import { segmentTargets, TargetSegmenter, TARGET_RENDER_DEFAULTS } from './targets';
import type { RgbImage } from './types';
import { builtInMasksVersion, createBuiltInSegmenter, parseMasksVersion } from './versions';
import { computeMaskView } from './view';

type Rect = { x0: number; y0: number; x1: number; y1: number; color: [number, number, number] };

/** A uniform ground with rectangles painted on it, in order. */
function scene(size: number, ground: [number, number, number], rects: Rect[]): RgbImage {
  const data = new Uint8Array(3 * size * size);
  for (let y = 0; y < size; y++) {
    for (let x = 0; x < size; x++) {
      let color = ground;
      for (const r of rects) if (x >= r.x0 && x < r.x1 && y >= r.y0 && y < r.y1) color = r.color;
      data.set(color, 3 * (y * size + x));
    }
  }
  return { width: size, height: size, data };
}

const GROUND: [number, number, number] = [150, 145, 135];
const OBJECT: Rect = { x0: 30, y0: 30, x1: 50, y1: 50, color: [235, 232, 225] };
// The object's cast shadow: the ground at half the light, beside the object.
const SHADOW: Rect = { x0: 50, y0: 34, x1: 60, y1: 54, color: [75, 72, 67] };

const inside = (r: Rect, x: number, y: number) => x >= r.x0 && x < r.x1 && y >= r.y0 && y < r.y1;

describe('segmentTargets (masks v2)', () => {
  it('a bright object with its shadow on a uniform ground: one target, ground and shadow are background', () => {
    const image = scene(96, GROUND, [OBJECT, SHADOW]);
    const { labels } = segmentTargets(image);
    const objectLabels = new Set<number>();
    for (let y = 0; y < 96; y++) {
      for (let x = 0; x < 96; x++) {
        const label = labels[y * 96 + x]!;
        // The object's interior (its one-pixel rim may blend with the ground) is the target; all else is background.
        if (inside({ ...OBJECT, x0: OBJECT.x0 + 1, y0: OBJECT.y0 + 1, x1: OBJECT.x1 - 1, y1: OBJECT.y1 - 1 }, x, y)) objectLabels.add(label);
        else if (!inside(OBJECT, x, y)) expect(label, `pixel ${x},${y}`).toBe(0);
      }
    }
    expect([...objectLabels]).toEqual([1]);
    expect(Math.max(...labels)).toBe(1);
  });

  it('v1 on the same scene has no background and cuts the shadow out as its own segment', () => {
    const labels = Array.from(segmentFelzenszwalb(scene(96, GROUND, [OBJECT, SHADOW])).labels);
    expect(labels.includes(0)).toBe(false);
    expect(labels[44 * 96 + 55]).not.toBe(labels[0]);
  });

  it('a segment touching two borders is background; a segment larger than maxTargetShare is background', () => {
    // A blue road from the top border to the bottom one (10% of the image), and a red roof in a field.
    const road: Rect = { x0: 10, y0: 0, x1: 20, y1: 96, color: [60, 80, 200] };
    const roof: Rect = { x0: 50, y0: 40, x1: 66, y1: 56, color: [200, 60, 50] };
    const image = scene(96, [90, 140, 70], [road, roof]);
    const { labels } = segmentTargets(image);
    expect(labels[50 * 96 + 15]).toBe(0);
    expect(labels[48 * 96 + 58]).toBe(1);
    expect(Math.max(...labels)).toBe(1);
    // With the border rule off the road is a target; with a small maxTargetShare it is background again.
    expect(segmentTargets(image, { borderLimit: 5 }).labels[50 * 96 + 15]).toBeGreaterThan(0);
    expect(segmentTargets(image, { borderLimit: 5, maxTargetShare: 0.05 }).labels[50 * 96 + 15]).toBe(0);
  });

  it('is deterministic and leaves its input alone', async () => {
    const image = scene(64, GROUND, [{ ...OBJECT, x0: 10, y0: 10, x1: 30, y1: 24 }, { x0: 40, y0: 36, x1: 56, y1: 50, color: [40, 120, 60] }]);
    const before = image.data.slice();
    const a = segmentTargets(image);
    const b = await new TargetSegmenter().labelMap(image, 'x.png');
    expect(Array.from(b.labels)).toEqual(Array.from(a.labels));
    expect(image.data).toEqual(before);
  });

  it('renders targets on a constant background', async () => {
    const image = scene(96, GROUND, [OBJECT, SHADOW]);
    const view = await computeMaskView(image, 'x.png', new TargetSegmenter());
    const bg = TARGET_RENDER_DEFAULTS.backgroundColor;
    for (const [x, y] of [[0, 0], [95, 95], [55, 40], [10, 70]] as const) {
      expect(Array.from(view.data.subarray(3 * (y * 96 + x), 3 * (y * 96 + x) + 3))).toEqual([...bg]);
    }
    // The target keeps its mean colour.
    expect(Array.from(view.data.subarray(3 * (40 * 96 + 40), 3 * (40 * 96 + 40) + 3))).toEqual(OBJECT.color);
  });

  it('rejects bad settings with the setting named', () => {
    expect(() => new TargetSegmenter({ borderLimit: 0 })).toThrow(/borderLimit/);
    expect(() => new TargetSegmenter({ maxTargetShare: 2 })).toThrow(/maxTargetShare/);
  });
});

describe('masks versions', () => {
  const dir = mkdtempSync(path.join(os.tmpdir(), 's2cpnet-masks-v2-'));
  afterAll(() => rmSync(dir, { recursive: true, force: true }));

  it('maps versions to the built-in segmenters and back', () => {
    expect(createBuiltInSegmenter('v1')).toBeInstanceOf(FelzenszwalbSegmenter);
    expect(createBuiltInSegmenter('v2')).toBeInstanceOf(TargetSegmenter);
    expect(createBuiltInSegmenter()).toBeInstanceOf(FelzenszwalbSegmenter);
    expect(builtInMasksVersion(new TargetSegmenter())).toBe('v2');
    expect(builtInMasksVersion(new FelzenszwalbSegmenter())).toBe('v1');
    expect(builtInMasksVersion({ name: 'sam', labelMap: async () => ({ width: 0, height: 0, labels: new Int32Array(0) }) })).toBeUndefined();
    expect(() => parseMasksVersion('v3', '--masks-version')).toThrow(/--masks-version.*v1, v2.*"v3"/);
  });

  it('v1 and v2 never share a cache folder', () => {
    const v1 = new MaskCache({ dir, provider: createBuiltInSegmenter('v1'), size: 64 });
    const v2 = new MaskCache({ dir, provider: createBuiltInSegmenter('v2'), size: 64 });
    expect(v1.folder).not.toBe(v2.folder);
    expect(path.basename(v2.folder)).toMatch(/^targets-v2-/);
    expect(createBuiltInSegmenter('v1').cacheKey).not.toBe(createBuiltInSegmenter('v2').cacheKey);
  });
});
