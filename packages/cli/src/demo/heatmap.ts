import type { RgbImage } from '@s2cpnet/data';

/** A perceptually ordered colour ramp (dark blue -> cyan -> yellow -> red) for attention weights in [0, 1]. */
function ramp(t: number): [number, number, number] {
  const stops: [number, number, number][] = [
    [20, 20, 90],
    [30, 140, 200],
    [240, 220, 60],
    [220, 40, 30],
  ];
  const x = Math.min(Math.max(t, 0), 1) * (stops.length - 1);
  const i = Math.min(Math.floor(x), stops.length - 2);
  const f = x - i;
  const a = stops[i]!;
  const b = stops[i + 1]!;
  return [a[0] + (b[0] - a[0]) * f, a[1] + (b[1] - a[1]) * f, a[2] + (b[2] - a[2]) * f];
}

/**
 * Blends an attention map over a G x G grid onto an image: weights are scaled to [0, 1] by their maximum,
 * upsampled bilinearly (cell centres) to the image size, coloured, and mixed 55/45 with the image.
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
      const [cr, cg, cb] = ramp(v);
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
