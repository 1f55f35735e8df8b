import { ConfigError } from '@s2cpnet/core';
import { segmentFelzenszwalb } from './felzenszwalb';
import type { MaskProvider } from './provider';
import type { RenderMaskViewOptions } from './render';
import type { LabelMap, RgbImage } from './types';
import { assertRgbImage } from './validate';

/**
 * Masks v2: "potential targets" on a background (spec section 3), built on the Felzenszwalb-Huttenlocher graph
 * segmentation of v1 (`segmentFelzenszwalb`) with three changes.
 *
 * 1. Shadow-robust edge weights. The image is converted to CIELab and segmented on (w_L * L*, g * a*, g * b*):
 *    lightness damped by `lightnessWeight`, chroma amplified by `chromaGain`. A cast shadow mostly lowers L* and
 *    keeps a*, b* (they shrink only with the cube root of the darkening), so the sunlit and shaded halves of a roof,
 *    tank or plane lie closer together than in RGB, where a shadow moves all three channels. Normalised rgb
 *    chromaticity was the other candidate; it divides by the pixel's brightness, which blows up sensor noise in
 *    exactly the dark shadow pixels, while Lab's a*, b* fade smoothly to grey there. Aerial colours are pale
 *    (|a*|, |b*| mostly under 30), hence the gain on chroma.
 * 2. Background decisions, on the segments of step 1 (`minAreaShare` merges small ones):
 *    - a segment larger than `maxTargetShare` of the image is background (apron, water, fields, asphalt);
 *    - a segment touching `borderLimit` or more of the image's four borders is background (the ground that runs
 *      through the picture, roads and rivers crossing it: context, not a target);
 *    - the dominant ground segment (the largest one, when it covers at least `groundMinShare`) is background, and
 *      so is every segment whose mean colour lies within `groundDistance` of it (ground cut into pieces by a road)
 *      or that has its chroma and is darker (`shadowDarkening`, `shadowChroma`: shadows cast on the ground).
 *    The rest are targets, numbered 1..T in raster order of their first pixel; background is 0.
 * 3. A plain background when rendered (`TARGET_RENDER_DEFAULTS`): background pixels are one constant mid grey, which
 *    the backbones' input normalisation maps to about zero ("nothing here"); targets keep their mean colour and a
 *    dark outline.
 *
 * Deterministic (no randomness, ties broken by raster order) and about as fast as v1: one colour conversion and a
 * pass over the segments on top of the same segmentation.
 */

export interface TargetSegmenterOptions {
  /** Felzenszwalb `k` on the Lab features (larger: larger segments). Default 200. */
  scale?: number;
  /** Gaussian pre-smoothing of the features, in pixels. Default 0.8 (as v1). */
  sigma?: number;
  /** Smallest segment as a share of the image; smaller ones merge into a neighbour. Default 0.002 (100 px at 224). */
  minAreaShare?: number;
  /** Weight of L* (0-100, scaled to 0-255) in the edge weights; 1 = undamped. Default 0.7. */
  lightnessWeight?: number;
  /** Factor on a* and b* in the edge weights. Default 1.5. */
  chromaGain?: number;
  /** Segments above this share of the image are background. Default 0.15. */
  maxTargetShare?: number;
  /** Segments touching at least this many of the four image borders are background. Default 2. */
  borderLimit?: number;
  /** The largest segment is the dominant ground (background) when it covers at least this share. Default 0.05. */
  groundMinShare?: number;
  /**
   * Segments whose mean feature colour (the edge-weight space) is within this distance of the dominant ground's are
   * ground too. Default 8. 0 turns this off.
   */
  groundDistance?: number;
  /**
   * Ground in shadow: a segment at least `shadowDarkening` L* units darker than the dominant ground, with a chroma
   * (a*, b*) within `shadowChroma` of the ground's, is background too (the shadows planes, tanks and buildings cast
   * on it). Default 10; 0 turns this off.
   */
  shadowDarkening?: number;
  /** Largest a*b* distance between ground in shadow and the ground. Default 6. */
  shadowChroma?: number;
  /**
   * Slivers: a segment with more than this share of its pixels on its own outline (at most about two pixels wide:
   * the blended rim smoothing leaves along a sharp edge, road markings) joins the non-sliver neighbour it shares the
   * longest border with. Default 0.8; 1 turns this off.
   */
  sliverEdgeShare?: number;
}

/**
 * Defaults chosen on the UCM contact sheet (`scripts/mask-contact-sheet.ts`), one train/val image per class, at
 * 224 px. Lightness is damped only to 0.7: at 0.35 white planes, boats and roofs merged into grey aprons, water and
 * roads (neutral targets differ from their ground in L* alone), while 0.7 with chroma x1.5 still joins a plane to
 * its shadow.
 */
export const TARGET_SEGMENTER_DEFAULTS: Readonly<Required<TargetSegmenterOptions>> = Object.freeze({
  scale: 200,
  sigma: 0.8,
  minAreaShare: 0.002,
  lightnessWeight: 0.7,
  chromaGain: 1.5,
  maxTargetShare: 0.15,
  borderLimit: 2,
  groundMinShare: 0.05,
  groundDistance: 8,
  shadowDarkening: 10,
  shadowChroma: 6,
  sliverEdgeShare: 0.8,
});

/** How v2 label maps are drawn: targets in their mean colour with a dark outline on a constant mid-grey ground. */
export const TARGET_RENDER_DEFAULTS: Readonly<Required<RenderMaskViewOptions>> = Object.freeze({
  borderColor: [0, 0, 0] as const,
  backgroundColor: [128, 128, 128] as const,
  drawBorders: true,
});

export function validateTargetSegmenterOptions(options: TargetSegmenterOptions = {}): Required<TargetSegmenterOptions> {
  const defined = Object.fromEntries(Object.entries(options).filter(([, v]) => v !== undefined)) as TargetSegmenterOptions;
  const resolved = { ...TARGET_SEGMENTER_DEFAULTS, ...defined };
  const check = (key: keyof TargetSegmenterOptions, ok: (v: number) => boolean, expected: string) => {
    const value = resolved[key];
    if (!(typeof value === 'number' && Number.isFinite(value) && ok(value))) {
      throw new ConfigError(`$.${key}`, `target segmenter ${key}: expected ${expected}, found ${String(value)}`);
    }
  };
  check('scale', (v) => v > 0, 'a positive number');
  check('sigma', (v) => v >= 0, 'a number >= 0');
  check('minAreaShare', (v) => v > 0 && v < 1, 'a share in (0, 1)');
  check('lightnessWeight', (v) => v >= 0 && v <= 4, 'a number in [0, 4]');
  check('chromaGain', (v) => v > 0 && v <= 8, 'a number in (0, 8]');
  check('maxTargetShare', (v) => v > 0 && v <= 1, 'a share in (0, 1]');
  check('borderLimit', (v) => Number.isInteger(v) && v >= 1 && v <= 5, 'an integer in [1, 5] (5: no border rule)');
  check('groundMinShare', (v) => v > 0 && v <= 1, 'a share in (0, 1]');
  check('groundDistance', (v) => v >= 0, 'a number >= 0');
  check('shadowDarkening', (v) => v >= 0, 'a number >= 0');
  check('shadowChroma', (v) => v >= 0, 'a number >= 0');
  check('sliverEdgeShare', (v) => v > 0 && v <= 1, 'a share in (0, 1]');
  return resolved;
}

/** sRGB byte -> linear light, once. */
const SRGB_TO_LINEAR = (() => {
  const table = new Float64Array(256);
  for (let i = 0; i < 256; i++) {
    const c = i / 255;
    table[i] = c <= 0.04045 ? c / 12.92 : Math.pow((c + 0.055) / 1.055, 2.4);
  }
  return table;
})();

function labF(t: number): number {
  return t > 216 / 24389 ? Math.cbrt(t) : (24389 / 27 * t + 16) / 116;
}

/**
 * The edge-weight features as an 8-bit 3-channel image, so the v1 segmentation (smoothing, graph, sort) runs on it
 * unchanged: channel 0 = w_L * L* * 2.55, channels 1 and 2 = 128 + g * a*, 128 + g * b* (clamped to 0-255).
 */
export function targetFeatureImage(image: RgbImage, lightnessWeight: number, chromaGain: number): RgbImage {
  const { width, height, data } = image;
  const n = width * height;
  const out = new Uint8Array(3 * n);
  const clamp = (v: number) => (v < 0 ? 0 : v > 255 ? 255 : Math.round(v));
  for (let p = 0; p < n; p++) {
    const r = SRGB_TO_LINEAR[data[3 * p]!]!;
    const g = SRGB_TO_LINEAR[data[3 * p + 1]!]!;
    const b = SRGB_TO_LINEAR[data[3 * p + 2]!]!;
    // sRGB (D65) -> XYZ normalised by the D65 white.
    const fx = labF((0.4124564 * r + 0.3575761 * g + 0.1804375 * b) / 0.95047);
    const fy = labF(0.2126729 * r + 0.7151522 * g + 0.072175 * b);
    const fz = labF((0.0193339 * r + 0.119192 * g + 0.9503041 * b) / 1.08883);
    const lightness = 116 * fy - 16;
    out[3 * p] = clamp(lightnessWeight * lightness * 2.55);
    out[3 * p + 1] = clamp(128 + chromaGain * 500 * (fx - fy));
    out[3 * p + 2] = clamp(128 + chromaGain * 200 * (fy - fz));
  }
  return { width, height, data: out };
}

/** Per-segment facts the background rules read. */
interface SegmentStats {
  area: Float64Array;
  /** Bit set of the borders a segment touches: 1 top, 2 bottom, 4 left, 8 right. */
  borders: Uint8Array;
  /** Mean feature colour, 3 per segment. */
  mean: Float64Array;
}

function segmentStats(labels: Int32Array, width: number, height: number, features: Uint8Array, count: number): SegmentStats {
  const area = new Float64Array(count + 1);
  const borders = new Uint8Array(count + 1);
  const mean = new Float64Array(3 * (count + 1));
  for (let y = 0; y < height; y++) {
    for (let x = 0; x < width; x++) {
      const p = y * width + x;
      const label = labels[p]!;
      area[label]! += 1;
      mean[3 * label]! += features[3 * p]!;
      mean[3 * label + 1]! += features[3 * p + 1]!;
      mean[3 * label + 2]! += features[3 * p + 2]!;
      if (y === 0) borders[label]! |= 1;
      if (y === height - 1) borders[label]! |= 2;
      if (x === 0) borders[label]! |= 4;
      if (x === width - 1) borders[label]! |= 8;
    }
  }
  for (let s = 1; s <= count; s++) for (let c = 0; c < 3; c++) mean[3 * s + c]! /= Math.max(1, area[s]!);
  return { area, borders, mean };
}

function bitCount(bits: number): number {
  let count = 0;
  for (let b = bits; b; b &= b - 1) count++;
  return count;
}

/**
 * Joins slivers (see `sliverEdgeShare`) to the non-sliver neighbour they share the longest border with (ties: the
 * lower label; a sliver with only sliver neighbours takes the best of those). One pass over the raw segments, so the
 * result does not depend on any visiting order.
 */
function joinSlivers(labels: Int32Array, width: number, height: number, count: number, edgeShare: number): void {
  const stride = count + 1;
  const area = new Float64Array(stride);
  const edge = new Float64Array(stride);
  const shared = new Map<number, number>();
  const note = (a: number, b: number) => {
    const key = a < b ? a * stride + b : b * stride + a;
    shared.set(key, (shared.get(key) ?? 0) + 1);
  };
  for (let y = 0; y < height; y++) {
    for (let x = 0; x < width; x++) {
      const p = y * width + x;
      const label = labels[p]!;
      area[label]! += 1;
      const right = x + 1 < width ? labels[p + 1]! : label;
      const down = y + 1 < height ? labels[p + width]! : label;
      const left = x > 0 ? labels[p - 1]! : label;
      const up = y > 0 ? labels[p - width]! : label;
      if (right !== label || down !== label || left !== label || up !== label) edge[label]! += 1;
      if (right !== label) note(label, right);
      if (down !== label) note(label, down);
    }
  }
  const sliver = new Uint8Array(stride);
  for (let s = 1; s <= count; s++) if (area[s]! > 0 && edge[s]! > edgeShare * area[s]!) sliver[s] = 1;
  // Best non-sliver neighbour (0: none yet) and best neighbour of any kind, by shared border, ties to the lower label.
  const best = new Int32Array(stride);
  const bestLength = new Float64Array(stride);
  const bestAny = new Int32Array(stride);
  const bestAnyLength = new Float64Array(stride);
  const consider = (s: number, other: number, length: number) => {
    if (!sliver[s]) return;
    if (!sliver[other] && (length > bestLength[s]! || (length === bestLength[s]! && other < best[s]!))) {
      best[s] = other;
      bestLength[s] = length;
    }
    if (length > bestAnyLength[s]! || (length === bestAnyLength[s]! && other < bestAny[s]!)) {
      bestAny[s] = other;
      bestAnyLength[s] = length;
    }
  };
  for (const [key, length] of shared) {
    const a = Math.floor(key / stride);
    const b = key % stride;
    consider(a, b, length);
    consider(b, a, length);
  }
  const target = new Int32Array(stride);
  for (let s = 0; s <= count; s++) target[s] = sliver[s] ? (best[s] || bestAny[s] || s) : s;
  // A sliver whose only neighbours are slivers follows their choice, a few steps at most.
  for (let p = 0; p < labels.length; p++) {
    let label = labels[p]!;
    for (let hops = 0; hops < 4 && target[label] !== label; hops++) label = target[label]!;
    labels[p] = label;
  }
}

/**
 * Segments an RGB image into targets on a background: labels 1..T in raster order of each target's first pixel,
 * 0 = background. Deterministic: same image and options, same labels.
 */
export function segmentTargets(image: RgbImage, options: TargetSegmenterOptions = {}): LabelMap {
  assertRgbImage('segmentTargets', 'image', image);
  const settings = validateTargetSegmenterOptions(options);
  const { width, height } = image;
  const n = width * height;
  if (n === 0) return { width, height, labels: new Int32Array(0) };
  const features = targetFeatureImage(image, settings.lightnessWeight, settings.chromaGain);
  const minSize = Math.max(1, Math.round(settings.minAreaShare * n));
  const segments = segmentFelzenszwalb(features, { scale: settings.scale, sigma: settings.sigma, minSize });
  const labels = segments.labels;
  let count = 0;
  for (let p = 0; p < n; p++) if (labels[p]! > count) count = labels[p]!;
  if (settings.sliverEdgeShare < 1) joinSlivers(labels, width, height, count, settings.sliverEdgeShare);
  const stats = segmentStats(labels, width, height, features.data, count);

  const background = new Uint8Array(count + 1);
  let ground = 0;
  for (let s = 1; s <= count; s++) {
    if (stats.area[s]! > settings.maxTargetShare * n || bitCount(stats.borders[s]!) >= settings.borderLimit) background[s] = 1;
    // Ties go to the lower label (the segment met first in raster order).
    if (ground === 0 || stats.area[s]! > stats.area[ground]!) ground = s;
  }
  if (ground !== 0 && stats.area[ground]! >= settings.groundMinShare * n) {
    background[ground] = 1;
    if (settings.groundDistance > 0) {
      const limit = settings.groundDistance * settings.groundDistance;
      for (let s = 1; s <= count; s++) {
        let distance = 0;
        for (let c = 0; c < 3; c++) {
          const d = stats.mean[3 * s + c]! - stats.mean[3 * ground + c]!;
          distance += d * d;
        }
        if (distance <= limit) background[s] = 1;
      }
    }
    if (settings.shadowDarkening > 0) {
      // Ground in shadow: the ground's chroma, darker by at least shadowDarkening L* units.
      const lightnessScale = settings.lightnessWeight * 2.55;
      const chromaLimit = settings.shadowChroma * settings.shadowChroma;
      const m = stats.mean;
      for (let s = 1; s <= count; s++) {
        const darkening = lightnessScale > 0 ? (m[3 * ground]! - m[3 * s]!) / lightnessScale : 0;
        const da = (m[3 * ground + 1]! - m[3 * s + 1]!) / settings.chromaGain;
        const db = (m[3 * ground + 2]! - m[3 * s + 2]!) / settings.chromaGain;
        if (darkening >= settings.shadowDarkening && da * da + db * db <= chromaLimit) background[s] = 1;
      }
    }
  }

  // Targets 1..T in raster order of their first pixel.
  const relabel = new Int32Array(count + 1).fill(-1);
  let next = 0;
  for (let p = 0; p < n; p++) {
    const s = labels[p]!;
    let target = relabel[s]!;
    if (target < 0) {
      target = background[s] ? 0 : ++next;
      relabel[s] = target;
    }
    labels[p] = target;
  }
  return { width, height, labels };
}

/**
 * The v2 built-in mask provider (`prepare --masks-version v2`): Felzenszwalb segments on shadow-robust Lab features,
 * large, border-crossing and ground segments as background (see `segmentTargets`). Its views are drawn on a plain
 * background (`render`, used by `computeMaskView` and `MaskCache` unless they are given render options).
 *
 * @example
 * ```ts
 * const segmenter = new TargetSegmenter();
 * const view = await computeMaskView(image, 'images/1.tif', segmenter, { size: 224 }); // targets on mid grey
 * ```
 */
export class TargetSegmenter implements MaskProvider {
  /** Built on the Felzenszwalb segmenter, and named like it: the version tells the two apart. */
  readonly name = 'felzenszwalb';
  readonly version = 'v2' as const;
  readonly cacheKey: string;
  readonly render: RenderMaskViewOptions = TARGET_RENDER_DEFAULTS;
  readonly options: Readonly<Required<TargetSegmenterOptions>>;

  constructor(options: TargetSegmenterOptions = {}) {
    this.options = Object.freeze(validateTargetSegmenterOptions(options));
    const o = this.options;
    this.cacheKey =
      `targets-v2-k${o.scale}-s${o.sigma}-min${o.minAreaShare}-l${o.lightnessWeight}-c${o.chromaGain}` +
      `-t${o.maxTargetShare}-b${o.borderLimit}-g${o.groundMinShare}-d${o.groundDistance}-sh${o.shadowDarkening}.${o.shadowChroma}-sl${o.sliverEdgeShare}`;
  }

  labelMap(image: RgbImage, _imageFile?: string): Promise<LabelMap> {
    try {
      return Promise.resolve(segmentTargets(image, this.options));
    } catch (error) {
      return Promise.reject(error);
    }
  }
}
