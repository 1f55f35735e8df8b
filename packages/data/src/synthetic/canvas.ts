import type { SeededRng } from '@s2cpnet/core';
import type { LabelMap, RgbImage } from '../masks/types';

/**
 * A small raster painter for synthetic overhead scenes. Every painted pixel gets a colour and the label of the object
 * it belongs to (0 = background), so the object masks are exact by construction: a later object overwrites an earlier
 * one pixel by pixel, and the visible area of each object is counted at the end.
 */

export type Rgb = readonly [number, number, number];

export interface Box {
  x: number;
  y: number;
  width: number;
  height: number;
}

export interface DraftObject {
  label: number;
  className: string;
  color: string;
}

export class Canvas {
  readonly size: number;
  /** Linear colour accumulator, 3 floats per pixel; quantised to bytes once at the end. */
  readonly rgb: Float32Array;
  readonly labels: Int32Array;
  readonly objects: DraftObject[] = [];

  constructor(
    size: number,
    readonly rng: SeededRng,
  ) {
    this.size = size;
    this.rgb = new Float32Array(3 * size * size);
    this.labels = new Int32Array(size * size);
  }

  /** Registers an object and returns its label. */
  addObject(className: string, color: string): number {
    const label = this.objects.length + 1;
    this.objects.push({ label, className, color });
    return label;
  }

  /** A per-object colour: the class colour with a small random shift, so colours are consistent but not flat. */
  jitter(base: Rgb, amount = 10): Rgb {
    const shift = (this.rng.next() * 2 - 1) * amount;
    return [
      base[0] + shift + (this.rng.next() * 2 - 1) * amount * 0.5,
      base[1] + shift + (this.rng.next() * 2 - 1) * amount * 0.5,
      base[2] + shift + (this.rng.next() * 2 - 1) * amount * 0.5,
    ];
  }

  setPixel(x: number, y: number, color: Rgb, label: number): void {
    this.setRgb(x, y, color[0], color[1], color[2], label);
  }

  /** Like `setPixel` with the channels passed separately (the hot loops allocate no colour arrays). */
  setRgb(x: number, y: number, r: number, g: number, b: number, label: number): void {
    if (x < 0 || y < 0 || x >= this.size || y >= this.size) return;
    const p = y * this.size + x;
    this.rgb[3 * p] = r;
    this.rgb[3 * p + 1] = g;
    this.rgb[3 * p + 2] = b;
    this.labels[p] = label;
  }

  labelAt(x: number, y: number): number {
    if (x < 0 || y < 0 || x >= this.size || y >= this.size) return -1;
    return this.labels[y * this.size + x]!;
  }

  /** Fills the whole canvas with background (label 0), with slow brightness undulation like real ground. */
  fillBackground(base: Rgb, undulation = 0.08): void {
    const grid = 5;
    const field = new Float32Array((grid + 1) * (grid + 1));
    for (let i = 0; i < field.length; i++) field[i] = 1 + (this.rng.next() * 2 - 1) * undulation;
    const s = this.size;
    for (let y = 0; y < s; y++) {
      const gy = (y / s) * grid;
      const y0 = Math.floor(gy);
      const fy = gy - y0;
      for (let x = 0; x < s; x++) {
        const gx = (x / s) * grid;
        const x0 = Math.floor(gx);
        const fx = gx - x0;
        const top = field[y0 * (grid + 1) + x0]! * (1 - fx) + field[y0 * (grid + 1) + x0 + 1]! * fx;
        const bottom = field[(y0 + 1) * (grid + 1) + x0]! * (1 - fx) + field[(y0 + 1) * (grid + 1) + x0 + 1]! * fx;
        const gain = top * (1 - fy) + bottom * fy;
        this.setRgb(x, y, base[0] * gain, base[1] * gain, base[2] * gain, 0);
      }
    }
  }

  /** Axis-aligned rectangle, `[x0, x1) x [y0, y1)` in pixels (rounded). */
  fillRect(x0: number, y0: number, x1: number, y1: number, color: Rgb, label: number): void {
    const xa = Math.max(0, Math.round(x0));
    const ya = Math.max(0, Math.round(y0));
    const xb = Math.min(this.size, Math.round(x1));
    const yb = Math.min(this.size, Math.round(y1));
    for (let y = ya; y < yb; y++) for (let x = xa; x < xb; x++) this.setPixel(x, y, color, label);
  }

  /** Pixels whose centre lies inside the ellipse. `shade` may darken/lighten each pixel (e.g. a tree's rounded top). */
  fillEllipse(
    cx: number,
    cy: number,
    rx: number,
    ry: number,
    color: Rgb,
    label: number,
    shade?: (dx: number, dy: number) => number,
  ): void {
    const xa = Math.max(0, Math.floor(cx - rx));
    const xb = Math.min(this.size - 1, Math.ceil(cx + rx));
    const ya = Math.max(0, Math.floor(cy - ry));
    const yb = Math.min(this.size - 1, Math.ceil(cy + ry));
    for (let y = ya; y <= yb; y++) {
      for (let x = xa; x <= xb; x++) {
        const dx = (x + 0.5 - cx) / rx;
        const dy = (y + 0.5 - cy) / ry;
        if (dx * dx + dy * dy > 1) continue;
        const gain = shade ? shade(dx, dy) : 1;
        this.setRgb(x, y, color[0] * gain, color[1] * gain, color[2] * gain, label);
      }
    }
  }

  /** Pixels where `inside(x + 0.5, y + 0.5)` holds, within a bounding box. */
  fillWhere(box: Box, inside: (x: number, y: number) => boolean, color: (x: number, y: number) => Rgb, label: number): void {
    const xa = Math.max(0, Math.floor(box.x));
    const ya = Math.max(0, Math.floor(box.y));
    const xb = Math.min(this.size, Math.ceil(box.x + box.width));
    const yb = Math.min(this.size, Math.ceil(box.y + box.height));
    for (let y = ya; y < yb; y++) {
      for (let x = xa; x < xb; x++) {
        if (inside(x + 0.5, y + 0.5)) this.setPixel(x, y, color(x, y), label);
      }
    }
  }

  /** True when every pixel of the rectangle (grown by `margin`) is inside the canvas and background. */
  isFree(x0: number, y0: number, x1: number, y1: number, margin = 1): boolean {
    const xa = Math.round(x0) - margin;
    const ya = Math.round(y0) - margin;
    const xb = Math.round(x1) + margin;
    const yb = Math.round(y1) + margin;
    if (xa < 0 || ya < 0 || xb > this.size || yb > this.size) return false;
    for (let y = ya; y < yb; y++) {
      for (let x = xa; x < xb; x++) if (this.labels[y * this.size + x] !== 0) return false;
    }
    return true;
  }

  /**
   * Adds fine texture noise (triangular, +-`amount`) to every pixel and rounds to bytes. Returns the finished image,
   * the label map with labels renumbered 1..K over the objects that are still visible, and those objects with their
   * visible area and bounding box.
   */
  finish(amount: number): {
    image: RgbImage;
    objectLabels: LabelMap;
    objects: Array<DraftObject & { area: number; bbox: Box }>;
  } {
    const s = this.size;
    const n = s * s;
    const data = new Uint8Array(3 * n);
    // The noise pass draws 3 numbers per pixel; a local xorshift32 seeded from the scene's generator is several times
    // faster than the shared generator here and just as deterministic. Each 32-bit draw gives two 16-bit uniforms
    // whose sum is triangular noise.
    let state = this.rng.nextUint32() | 1;
    const rgb = this.rgb;
    for (let i = 0; i < 3 * n; i++) {
      state ^= state << 13;
      state ^= state >>> 17;
      state ^= state << 5;
      const noise = ((state & 0xffff) + (state >>> 16)) / 65535 - 1;
      const value = rgb[i]! + noise * amount;
      data[i] = value < 0 ? 0 : value > 255 ? 255 : Math.round(value);
    }
    const count = this.objects.length;
    const area = new Int32Array(count + 1);
    const minX = new Int32Array(count + 1).fill(s);
    const minY = new Int32Array(count + 1).fill(s);
    const maxX = new Int32Array(count + 1).fill(-1);
    const maxY = new Int32Array(count + 1).fill(-1);
    for (let y = 0; y < s; y++) {
      for (let x = 0; x < s; x++) {
        const label = this.labels[y * s + x]!;
        if (label === 0) continue;
        area[label]!++;
        if (x < minX[label]!) minX[label] = x;
        if (x > maxX[label]!) maxX[label] = x;
        if (y < minY[label]!) minY[label] = y;
        if (y > maxY[label]!) maxY[label] = y;
      }
    }
    const renumber = new Int32Array(count + 1);
    const objects: Array<DraftObject & { area: number; bbox: Box }> = [];
    for (const object of this.objects) {
      const old = object.label;
      if (area[old] === 0) continue;
      const label = objects.length + 1;
      renumber[old] = label;
      objects.push({
        ...object,
        label,
        area: area[old]!,
        bbox: { x: minX[old]!, y: minY[old]!, width: maxX[old]! - minX[old]! + 1, height: maxY[old]! - minY[old]! + 1 },
      });
    }
    const labels = new Int32Array(n);
    for (let p = 0; p < n; p++) labels[p] = renumber[this.labels[p]!]!;
    return { image: { width: s, height: s, data }, objectLabels: { width: s, height: s, labels }, objects };
  }
}
