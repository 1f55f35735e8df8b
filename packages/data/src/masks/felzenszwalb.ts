import { ConfigError } from '@s2cpnet/core';
import type { MaskProvider } from './provider';
import type { LabelMap, RgbImage } from './types';
import { assertRgbImage } from './validate';

/**
 * Felzenszwalb-Huttenlocher graph segmentation ("Efficient Graph-Based Image Segmentation", IJCV 2004): the
 * built-in, model-free mask provider (spec section 3).
 *
 * Steps: Gaussian smoothing with `sigma`; an 8-neighbour grid graph whose edge weights are the Euclidean RGB
 * distances of the smoothed pixels (0-255 units); edges sorted by weight; a union-find pass that joins two
 * components when the edge weight is at most both components' internal difference plus `scale / |C|`; finally
 * components smaller than `minSize` pixels are merged into their neighbour across the cheapest edge.
 *
 * Speed: everything lives in typed arrays that are reused between calls of the same image size, and edges are
 * ordered by a counting sort over weights quantised to 1/64 (the quantised weight is also the weight the
 * threshold test uses, so order and test agree exactly). Ties keep creation order, so the result is deterministic.
 */

export interface FelzenszwalbOptions {
  /**
   * `k` of the paper: larger values prefer larger segments (the threshold is `k / |C|`, in 0-255 colour units).
   * Default 300.
   */
  scale?: number;
  /** Standard deviation of the Gaussian pre-smoothing, in pixels; 0 turns smoothing off. Default 0.8. */
  sigma?: number;
  /** Minimum segment area in pixels; smaller components are merged into a neighbour. Default 100. */
  minSize?: number;
}

/**
 * Defaults for 224-256 px aerial images (UCM, RSICD, NWPU): with them a 256x256 UCM image splits into roughly
 * 20-150 segments (measured: 23-123 over the first twelve UCM images), each of at least 100 px (0.15% of the image),
 * which keeps buildings, boats, tree clumps and fields as separate potential targets without shredding texture.
 */
export const FELZENSZWALB_DEFAULTS: Readonly<Required<FelzenszwalbOptions>> = Object.freeze({
  scale: 300,
  sigma: 0.8,
  minSize: 100,
});

/** Quantisation of edge weights for the counting sort: 1/64 colour unit. */
const WEIGHT_STEPS_PER_UNIT = 64;
/** Largest possible RGB distance, sqrt(3) * 255, in quantised steps, plus one. */
const WEIGHT_BINS = Math.ceil(Math.sqrt(3) * 255 * WEIGHT_STEPS_PER_UNIT) + 2;

/** Reusable buffers for one image size; reallocating ~6 MB per 256x256 call would cost more than the algorithm. */
class Workspace {
  readonly pixelCount: number;
  readonly smoothed: Float32Array;
  readonly rowPass: Float32Array;
  readonly edgeKeys: Uint16Array;
  readonly edgeCodes: Int32Array;
  readonly sortedCodes: Int32Array;
  readonly binStart: Int32Array;
  readonly parent: Int32Array;
  readonly size: Int32Array;
  readonly threshold: Float32Array;
  readonly rootLabel: Int32Array;

  constructor(
    readonly width: number,
    readonly height: number,
  ) {
    const n = width * height;
    this.pixelCount = n;
    this.smoothed = new Float32Array(3 * n);
    this.rowPass = new Float32Array(3 * n);
    const maxEdges = 4 * n;
    this.edgeKeys = new Uint16Array(maxEdges);
    this.edgeCodes = new Int32Array(maxEdges);
    this.sortedCodes = new Int32Array(maxEdges);
    this.binStart = new Int32Array(WEIGHT_BINS + 1);
    this.parent = new Int32Array(n);
    this.size = new Int32Array(n);
    this.threshold = new Float32Array(n);
    this.rootLabel = new Int32Array(n);
  }
}

function gaussianKernel(sigma: number): Float32Array {
  // Radius 3 sigma: the taps beyond it weigh < 0.1% together, and each saved tap is ~10% of the smoothing time.
  const radius = Math.max(1, Math.ceil(3 * sigma));
  const kernel = new Float32Array(2 * radius + 1);
  let sum = 0;
  for (let i = -radius; i <= radius; i++) {
    const value = Math.exp(-0.5 * (i / sigma) * (i / sigma));
    kernel[i + radius] = value;
    sum += value;
  }
  for (let i = 0; i < kernel.length; i++) kernel[i] = kernel[i]! / sum;
  return kernel;
}

/**
 * Separable Gaussian blur of interleaved RGB bytes into three planar float channels (`out[c * n + i]`).
 * Borders repeat the edge pixel.
 */
function smoothToPlanes(image: RgbImage, sigma: number, rowPass: Float32Array, out: Float32Array): void {
  const { width: w, height: h, data } = image;
  const n = w * h;
  if (!(sigma > 0)) {
    for (let i = 0; i < n; i++) {
      out[i] = data[3 * i]!;
      out[n + i] = data[3 * i + 1]!;
      out[2 * n + i] = data[3 * i + 2]!;
    }
    return;
  }
  const kernel = gaussianKernel(sigma);
  const radius = (kernel.length - 1) >> 1;
  // Horizontal pass: interleaved bytes -> planar rows.
  for (let y = 0; y < h; y++) {
    const row = y * w;
    for (let x = 0; x < w; x++) {
      let r = 0;
      let g = 0;
      let b = 0;
      if (x >= radius && x + radius < w) {
        let p = 3 * (row + x - radius);
        for (let k = 0; k < kernel.length; k++, p += 3) {
          const weight = kernel[k]!;
          r += weight * data[p]!;
          g += weight * data[p + 1]!;
          b += weight * data[p + 2]!;
        }
      } else {
        for (let k = -radius; k <= radius; k++) {
          const xx = x + k < 0 ? 0 : x + k >= w ? w - 1 : x + k;
          const p = 3 * (row + xx);
          const weight = kernel[k + radius]!;
          r += weight * data[p]!;
          g += weight * data[p + 1]!;
          b += weight * data[p + 2]!;
        }
      }
      rowPass[row + x] = r;
      rowPass[n + row + x] = g;
      rowPass[2 * n + row + x] = b;
    }
  }
  // Vertical pass, one channel plane at a time.
  for (let c = 0; c < 3; c++) {
    const base = c * n;
    for (let y = 0; y < h; y++) {
      const interior = y >= radius && y + radius < h;
      for (let x = 0; x < w; x++) {
        let sum = 0;
        if (interior) {
          let p = base + (y - radius) * w + x;
          for (let k = 0; k < kernel.length; k++, p += w) sum += kernel[k]! * rowPass[p]!;
        } else {
          for (let k = -radius; k <= radius; k++) {
            const yy = y + k < 0 ? 0 : y + k >= h ? h - 1 : y + k;
            sum += kernel[k + radius]! * rowPass[base + yy * w + x]!;
          }
        }
        out[base + y * w + x] = sum;
      }
    }
  }
}

/** Finds the root of `x` with path halving. */
function findRoot(parent: Int32Array, x: number): number {
  while (parent[x] !== x) {
    const grand = parent[parent[x]!]!;
    parent[x] = grand;
    x = grand;
  }
  return x;
}

export function validateFelzenszwalbOptions(options: FelzenszwalbOptions = {}): Required<FelzenszwalbOptions> {
  const resolved = { ...FELZENSZWALB_DEFAULTS, ...stripUndefined(options) };
  if (!(Number.isFinite(resolved.scale) && resolved.scale > 0)) {
    throw new ConfigError('$.scale', `Felzenszwalb scale must be a positive number, found ${String(resolved.scale)}`);
  }
  if (!(Number.isFinite(resolved.sigma) && resolved.sigma >= 0)) {
    throw new ConfigError('$.sigma', `Felzenszwalb sigma must be a number >= 0, found ${String(resolved.sigma)}`);
  }
  if (!(Number.isInteger(resolved.minSize) && resolved.minSize >= 1)) {
    throw new ConfigError('$.minSize', `Felzenszwalb minSize must be an integer >= 1, found ${String(resolved.minSize)}`);
  }
  return resolved;
}

function stripUndefined<T extends object>(value: T): Partial<T> {
  return Object.fromEntries(Object.entries(value).filter(([, v]) => v !== undefined)) as Partial<T>;
}

let sharedWorkspace: Workspace | undefined;

function workspaceFor(width: number, height: number): Workspace {
  // One shared workspace: the computation is synchronous, so two calls never use it at the same time.
  if (!sharedWorkspace || sharedWorkspace.width !== width || sharedWorkspace.height !== height) {
    sharedWorkspace = new Workspace(width, height);
  }
  return sharedWorkspace;
}

/**
 * Segments an RGB image. Returns labels 1..S in raster order of each segment's first pixel (every pixel belongs to a
 * segment, so there is no background 0). Deterministic: same image and options, same labels.
 */
export function segmentFelzenszwalb(image: RgbImage, options: FelzenszwalbOptions = {}): LabelMap {
  assertRgbImage('segmentFelzenszwalb', 'image', image);
  const { scale, sigma, minSize } = validateFelzenszwalbOptions(options);
  const { width: w, height: h } = image;
  const n = w * h;
  const labels = new Int32Array(n);
  if (n === 0) return { width: w, height: h, labels };

  const ws = workspaceFor(w, h);
  const planes = ws.smoothed;
  smoothToPlanes(image, sigma, ws.rowPass, planes);

  // Build the 8-neighbour graph: each pixel owns its right, down, down-right and up-right edges, built one
  // direction at a time so the inner loops have no bounds tests. An edge is coded as pixel * 4 + direction, so no
  // endpoint arrays are needed.
  const keys = ws.edgeKeys;
  const codes = ws.edgeCodes;
  const red = planes.subarray(0, n);
  const green = planes.subarray(n, 2 * n);
  const blue = planes.subarray(2 * n, 3 * n);
  let edgeCount = 0;
  const directions: Array<[offset: number, x0: number, x1: number, y0: number, y1: number]> = [
    [1, 0, w - 1, 0, h], // right
    [w, 0, w, 0, h - 1], // down
    [w + 1, 0, w - 1, 0, h - 1], // down-right
    [1 - w, 0, w - 1, 1, h], // up-right
  ];
  for (let direction = 0; direction < 4; direction++) {
    const [offset, x0, x1, y0, y1] = directions[direction]!;
    for (let y = y0; y < y1; y++) {
      const row = y * w;
      for (let x = x0; x < x1; x++) {
        const a = row + x;
        const b = a + offset;
        const dr = red[a]! - red[b]!;
        const dg = green[a]! - green[b]!;
        const db = blue[a]! - blue[b]!;
        keys[edgeCount] = (Math.sqrt(dr * dr + dg * dg + db * db) * WEIGHT_STEPS_PER_UNIT + 0.5) | 0;
        codes[edgeCount] = a * 4 + direction;
        edgeCount++;
      }
    }
  }

  // Counting sort by quantised weight (stable, so ties keep creation order).
  const binStart = ws.binStart;
  binStart.fill(0);
  for (let e = 0; e < edgeCount; e++) binStart[keys[e]! + 1]!++;
  for (let k = 0; k < WEIGHT_BINS; k++) binStart[k + 1]! += binStart[k]!;
  const sorted = ws.sortedCodes;
  {
    // binStart doubles as the write cursor; it is rebuilt right after for the passes below.
    const cursor = ws.binStart;
    for (let e = 0; e < edgeCount; e++) sorted[cursor[keys[e]!]!++] = codes[e]!;
    // After scattering, cursor[k] holds the end of bin k == start of bin k + 1: shift back by one bin.
    for (let k = WEIGHT_BINS; k > 0; k--) cursor[k] = cursor[k - 1]!;
    cursor[0] = 0;
  }
  const offsets = [1, w, w + 1, 1 - w];

  const { parent, size, threshold } = ws;
  for (let i = 0; i < n; i++) {
    parent[i] = i;
    size[i] = 1;
    threshold[i] = scale;
  }

  // Main pass: join across edge (a, b) when its weight is within both components' thresholds.
  for (let bin = 0; bin < WEIGHT_BINS; bin++) {
    const end = binStart[bin + 1]!;
    let i = binStart[bin]!;
    if (i === end) continue;
    const weight = bin / WEIGHT_STEPS_PER_UNIT;
    for (; i < end; i++) {
      const code = sorted[i]!;
      const a0 = code >> 2;
      let a = findRoot(parent, a0);
      let b = findRoot(parent, a0 + offsets[code & 3]!);
      if (a === b || weight > threshold[a]! || weight > threshold[b]!) continue;
      // Union by size keeps trees shallow without a separate rank array.
      if (size[a]! < size[b]!) {
        const t = a;
        a = b;
        b = t;
      }
      parent[b] = a;
      size[a]! += size[b]!;
      threshold[a] = weight + scale / size[a]!;
    }
  }
  // Point every pixel straight at its root, so the two passes below find roots in one or two steps.
  for (let p = 0; p < n; p++) parent[p] = findRoot(parent, p);

  // Clean-up pass: absorb components below minSize through their cheapest edges.
  if (minSize > 1) {
    for (let i = 0; i < edgeCount; i++) {
      const code = sorted[i]!;
      const a0 = code >> 2;
      let a = findRoot(parent, a0);
      let b = findRoot(parent, a0 + offsets[code & 3]!);
      if (a === b || (size[a]! >= minSize && size[b]! >= minSize)) continue;
      if (size[a]! < size[b]!) {
        const t = a;
        a = b;
        b = t;
      }
      parent[b] = a;
      size[a]! += size[b]!;
    }
  }

  // Label segments 1..S in raster order of their first pixel.
  const rootLabel = ws.rootLabel;
  rootLabel.fill(0);
  let next = 0;
  for (let p = 0; p < n; p++) {
    const root = findRoot(parent, p);
    let label = rootLabel[root]!;
    if (label === 0) {
      label = ++next;
      rootLabel[root] = label;
    }
    labels[p] = label;
  }
  return { width: w, height: h, labels };
}

/**
 * The default mask provider: Felzenszwalb-Huttenlocher segmentation, no model needed.
 *
 * @example
 * ```ts
 * const segmenter = new FelzenszwalbSegmenter({ scale: 300, sigma: 0.8, minSize: 100 });
 * const labels = await segmenter.labelMap(image, 'images/1.tif');
 * const maskView = renderMaskView(image, labels);
 * ```
 */
export class FelzenszwalbSegmenter implements MaskProvider {
  readonly name = 'felzenszwalb';
  /** Masks version 1 of the built-in segmenter (see `MasksVersion`). */
  readonly version = 'v1' as const;
  readonly cacheKey: string;
  readonly options: Readonly<Required<FelzenszwalbOptions>>;

  constructor(options: FelzenszwalbOptions = {}) {
    this.options = Object.freeze(validateFelzenszwalbOptions(options));
    const { scale, sigma, minSize } = this.options;
    this.cacheKey = `felzenszwalb-k${scale}-s${sigma}-min${minSize}`;
  }

  labelMap(image: RgbImage, _imageFile?: string): Promise<LabelMap> {
    try {
      return Promise.resolve(segmentFelzenszwalb(image, this.options));
    } catch (error) {
      return Promise.reject(error);
    }
  }
}
