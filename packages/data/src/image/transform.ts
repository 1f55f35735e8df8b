import type { RgbImage } from '../masks/types';
import { checkRgbImage } from './codec';

/**
 * Bilinear resize with half-pixel centres (the convention of `tf.image.resizeBilinear(..., halfPixelCenters=true)`,
 * OpenCV `INTER_LINEAR` and PyTorch `align_corners=False`): output pixel x samples the input at
 * `(x + 0.5) * inWidth / outWidth - 0.5`, clamped at the borders. Values are rounded to the nearest integer.
 * Returns the input itself when the size already matches.
 *
 * @example
 * ```ts
 * const input = resizeBilinear(await decodeImageFile('1.tif'), 224, 224);
 * ```
 */
export function resizeBilinear(image: RgbImage, width: number, height: number): RgbImage {
  checkRgbImage('resizeBilinear', image);
  if (!Number.isInteger(width) || !Number.isInteger(height) || width < 1 || height < 1) {
    throw new RangeError(`resizeBilinear: expected a positive integer output size, found ${width}x${height}`);
  }
  if (width === image.width && height === image.height) return image;
  const { width: inW, height: inH, data: src } = image;
  const out = new Uint8Array(width * height * 3);
  // Precompute the horizontal taps once: they are the same for every row.
  const x0s = new Int32Array(width);
  const x1s = new Int32Array(width);
  const wxs = new Float32Array(width);
  const scaleX = inW / width;
  for (let x = 0; x < width; x++) {
    const sx = Math.min(Math.max((x + 0.5) * scaleX - 0.5, 0), inW - 1);
    const x0 = Math.floor(sx);
    x0s[x] = x0 * 3;
    x1s[x] = Math.min(x0 + 1, inW - 1) * 3;
    wxs[x] = sx - x0;
  }
  const scaleY = inH / height;
  for (let y = 0; y < height; y++) {
    const sy = Math.min(Math.max((y + 0.5) * scaleY - 0.5, 0), inH - 1);
    const y0 = Math.floor(sy);
    const wy = sy - y0;
    const row0 = y0 * inW * 3;
    const row1 = Math.min(y0 + 1, inH - 1) * inW * 3;
    let o = y * width * 3;
    for (let x = 0; x < width; x++) {
      const a = row0 + x0s[x]!;
      const b = row0 + x1s[x]!;
      const c = row1 + x0s[x]!;
      const d = row1 + x1s[x]!;
      const wx = wxs[x]!;
      // Unrolled over the three channels; values are non-negative, so adding 0.5 and truncating rounds.
      let top = src[a]! + (src[b]! - src[a]!) * wx;
      let bottom = src[c]! + (src[d]! - src[c]!) * wx;
      out[o++] = (top + (bottom - top) * wy + 0.5) | 0;
      top = src[a + 1]! + (src[b + 1]! - src[a + 1]!) * wx;
      bottom = src[c + 1]! + (src[d + 1]! - src[c + 1]!) * wx;
      out[o++] = (top + (bottom - top) * wy + 0.5) | 0;
      top = src[a + 2]! + (src[b + 2]! - src[a + 2]!) * wx;
      bottom = src[c + 2]! + (src[d + 2]! - src[c + 2]!) * wx;
      out[o++] = (top + (bottom - top) * wy + 0.5) | 0;
    }
  }
  return { width, height, data: out };
}

/** Backbones with a known input normalisation. */
export type BackboneNormalization = 'resnet' | 'mobilenet';

/** ImageNet channel statistics on 0-1 RGB, as torchvision's ResNet weights expect. */
export const IMAGENET_MEAN: readonly [number, number, number] = [0.485, 0.456, 0.406];
export const IMAGENET_STD: readonly [number, number, number] = [0.229, 0.224, 0.225];

/**
 * Converts an RGB image to the float input a backbone expects, channels last (HWC):
 * `resnet`: `(x/255 - mean) / std` with ImageNet statistics; `mobilenet`: `x/127.5 - 1`.
 * Writes into `out` at `offset` when given (to fill a batch without copies), else into a new array.
 *
 * @example
 * ```ts
 * const pixels = normalizeForBackbone(resizeBilinear(image, 224, 224), 'resnet'); // Float32Array(224*224*3)
 * ```
 */
export function normalizeForBackbone(
  image: RgbImage,
  backbone: BackboneNormalization,
  out?: Float32Array,
  offset = 0,
): Float32Array {
  checkRgbImage('normalizeForBackbone', image);
  const n = image.data.length;
  const target = out ?? new Float32Array(n);
  if (offset < 0 || offset + n > target.length) {
    throw new RangeError(`normalizeForBackbone: ${n} values do not fit in the output (length ${target.length}) at offset ${offset}`);
  }
  const src = image.data;
  if (backbone === 'resnet') {
    const scale = [1 / (255 * IMAGENET_STD[0]), 1 / (255 * IMAGENET_STD[1]), 1 / (255 * IMAGENET_STD[2])];
    const shift = [IMAGENET_MEAN[0] / IMAGENET_STD[0], IMAGENET_MEAN[1] / IMAGENET_STD[1], IMAGENET_MEAN[2] / IMAGENET_STD[2]];
    for (let i = 0; i < n; i += 3) {
      target[offset + i] = src[i]! * scale[0]! - shift[0]!;
      target[offset + i + 1] = src[i + 1]! * scale[1]! - shift[1]!;
      target[offset + i + 2] = src[i + 2]! * scale[2]! - shift[2]!;
    }
  } else if (backbone === 'mobilenet') {
    for (let i = 0; i < n; i++) target[offset + i] = src[i]! / 127.5 - 1;
  } else {
    throw new RangeError(`normalizeForBackbone: unknown backbone ${JSON.stringify(backbone)}; expected "resnet" or "mobilenet"`);
  }
  return target;
}

/** A flip and a number of quarter turns, applied identically to an image and its mask. */
export interface ImageAugmentation {
  /** Mirror left-right before rotating. */
  flip: boolean;
  /** Counter-clockwise quarter turns, 0-3. */
  quarterTurns: 0 | 1 | 2 | 3;
}

/** Applies a flip and quarter turns. Square images keep their size; others swap width and height on odd turns. */
export function augmentImage(image: RgbImage, augmentation: ImageAugmentation): RgbImage {
  checkRgbImage('augmentImage', image);
  const { flip, quarterTurns } = augmentation;
  if (!flip && quarterTurns === 0) return image;
  const { width: w, height: h, data } = image;
  const odd = quarterTurns % 2 === 1;
  const outW = odd ? h : w;
  const outH = odd ? w : h;
  const out = new Uint8Array(data.length);
  for (let y = 0; y < outH; y++) {
    for (let x = 0; x < outW; x++) {
      // Map the output pixel back to the source: undo the rotation, then undo the flip.
      let sx: number;
      let sy: number;
      switch (quarterTurns) {
        case 1: sx = w - 1 - y; sy = x; break;
        case 2: sx = w - 1 - x; sy = h - 1 - y; break;
        case 3: sx = y; sy = h - 1 - x; break;
        default: sx = x; sy = y;
      }
      if (flip) sx = w - 1 - sx;
      const s = (sy * w + sx) * 3;
      const o = (y * outW + x) * 3;
      out[o] = data[s]!;
      out[o + 1] = data[s + 1]!;
      out[o + 2] = data[s + 2]!;
    }
  }
  return { width: outW, height: outH, data: out };
}
