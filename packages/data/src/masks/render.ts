import type { LabelMap, RgbImage } from './types';
import { assertLabelMap, assertRgbImage } from './validate';

export type RgbColor = readonly [number, number, number];

export interface RenderMaskViewOptions {
  /** Colour of segment borders. Default black `[0, 0, 0]`: shape and location stand out, texture does not. */
  borderColor?: RgbColor;
  /** Colour of background pixels (label 0). Default black. */
  backgroundColor?: RgbColor;
  /** Draw borders between segments. Default true. */
  drawBorders?: boolean;
}

export const RENDER_MASK_VIEW_DEFAULTS: Readonly<Required<RenderMaskViewOptions>> = Object.freeze({
  borderColor: [0, 0, 0] as const,
  backgroundColor: [0, 0, 0] as const,
  drawBorders: true,
});

/** A short, folder-safe description of render options, for cache keys. */
export function renderOptionsKey(options: RenderMaskViewOptions = {}): string {
  const o = { ...RENDER_MASK_VIEW_DEFAULTS, ...options };
  return `b${o.drawBorders ? o.borderColor.join('.') : 'none'}-bg${o.backgroundColor.join('.')}`;
}

/**
 * Renders a label map as the 3-channel mask view of spec section 3: every segment filled with the mean colour of
 * its pixels in `image`, background (label 0) filled with `backgroundColor`, and a 1-px dark border on the pixels
 * whose right or lower neighbour belongs to another segment (one-sided so borders stay thin at 224 px).
 *
 * @example
 * ```ts
 * const labels = await new FelzenszwalbSegmenter().labelMap(image, file);
 * const maskView = renderMaskView(image, labels); // same size as image
 * ```
 */
export function renderMaskView(image: RgbImage, labels: LabelMap, options: RenderMaskViewOptions = {}): RgbImage {
  assertRgbImage('renderMaskView', 'image', image);
  assertLabelMap('renderMaskView', 'labels', labels, image);
  const { borderColor, backgroundColor, drawBorders } = { ...RENDER_MASK_VIEW_DEFAULTS, ...options };
  const { width: w, height: h } = image;
  const ids = labels.labels;
  const src = image.data;
  const n = w * h;

  let maxLabel = 0;
  for (let p = 0; p < n; p++) {
    const label = ids[p];
    if (label < 0) throw new RangeError(`renderMaskView: labels must be >= 0, found ${label} at pixel ${p}`);
    if (label > maxLabel) maxLabel = label;
  }
  // Per-segment colour sums; Float64 so huge images cannot overflow.
  const sums = new Float64Array(3 * (maxLabel + 1));
  const counts = new Float64Array(maxLabel + 1);
  for (let p = 0; p < n; p++) {
    const label = ids[p];
    counts[label] += 1;
    sums[3 * label] += src[3 * p];
    sums[3 * label + 1] += src[3 * p + 1];
    sums[3 * label + 2] += src[3 * p + 2];
  }
  const palette = new Uint8Array(3 * (maxLabel + 1));
  palette[0] = backgroundColor[0];
  palette[1] = backgroundColor[1];
  palette[2] = backgroundColor[2];
  for (let label = 1; label <= maxLabel; label++) {
    const count = counts[label];
    if (count === 0) continue;
    for (let c = 0; c < 3; c++) palette[3 * label + c] = Math.round(sums[3 * label + c] / count);
  }

  const out = new Uint8Array(3 * n);
  for (let y = 0; y < h; y++) {
    for (let x = 0; x < w; x++) {
      const p = y * w + x;
      const label = ids[p];
      const isBorder =
        drawBorders && ((x + 1 < w && ids[p + 1] !== label) || (y + 1 < h && ids[p + w] !== label));
      const color = isBorder ? borderColor : undefined;
      if (color) {
        out[3 * p] = color[0];
        out[3 * p + 1] = color[1];
        out[3 * p + 2] = color[2];
      } else {
        out[3 * p] = palette[3 * label];
        out[3 * p + 1] = palette[3 * label + 1];
        out[3 * p + 2] = palette[3 * label + 2];
      }
    }
  }
  return { width: w, height: h, data: out };
}
