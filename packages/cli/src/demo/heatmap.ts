import type { RgbImage } from '@s2cpnet/data';
import { viridis } from '@s2cpnet/data';

/**
 * Blends an attention map over a G x G grid onto an image: weights are scaled to [0, 1] by their maximum,
 * upsampled bilinearly (cell centres) to the image size, coloured with viridis, and mixed 55/45 with the image.
 * (The HTML reports draw their overlays in the page from the raw weights; this is for PNG output.)
 */
export function attentionOverlay(image: RgbImage, weights: Float32Array, grid: number): RgbImage {
  const { width, height } = image;
  let max = 0;
  for (const w of weights) max = Math.max(max, w);
  const scale = max > 0 ? 1 / max : 0;
  const out = new Uint8Array(width * height * 3);
  const at = (r: number, c: number) => weights[Math.min(grid - 1, Math.max(0, r)) * grid + Math.min(grid - 1, Math.max(0, c))]! * scale;
  for (let y = 0; y < height; y++) {
    const gy = ((y + 0.5) / height) * grid - 0.5;
    const r0 = Math.floor(gy);
    const fy = gy - r0;
    for (let x = 0; x < width; x++) {
      const gx = ((x + 0.5) / width) * grid - 0.5;
      const c0 = Math.floor(gx);
      const fx = gx - c0;
      const v = (1 - fy) * ((1 - fx) * at(r0, c0) + fx * at(r0, c0 + 1)) + fy * ((1 - fx) * at(r0 + 1, c0) + fx * at(r0 + 1, c0 + 1));
      const [cr, cg, cb] = viridis(v);
      const o = (y * width + x) * 3;
      out[o] = Math.round(0.45 * image.data[o]! + 0.55 * cr);
      out[o + 1] = Math.round(0.45 * image.data[o + 1]! + 0.55 * cg);
      out[o + 2] = Math.round(0.45 * image.data[o + 2]! + 0.55 * cb);
    }
  }
  return { width, height, data: out };
}

export function pngDataUri(png: Uint8Array): string {
  return `data:image/png;base64,${Buffer.from(png).toString('base64')}`;
}
