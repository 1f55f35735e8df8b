import { promises as fsp } from 'node:fs';
import * as path from 'node:path';
import { ConfigError, InputError, hashString } from '@s2cpnet/core';
import { decodeImageFile } from '../image/codec';
import type { MaskProvider, MaskViewSource } from './provider';
import type { RgbColor } from './render';
import type { LabelMap, RgbImage } from './types';
import { assertRgbImage } from './validate';

/** Mask file extensions looked for, in this order of preference when several exist. */
export const MASK_FILE_EXTENSIONS: readonly string[] = ['.png', '.jpg', '.jpeg', '.tif', '.tiff'];

export interface FolderMaskProviderOptions {
  /** Folder holding one mask image per input image, named like the image (any extension in `MASK_FILE_EXTENSIONS`). */
  dir: string;
  /**
   * Mask colour that means "no target" (label 0). Default black, which is also the border and background colour of
   * `renderMaskView`, so rendered masks read back into their segments. `null`: every colour is a segment.
   */
  backgroundColor?: RgbColor | null;
  /**
   * Largest per-channel difference between 4-neighbours that still counts as "the same colour". Default 0 (exact),
   * right for PNG/TIFF masks; lossy JPEG masks need about 8-16.
   */
  colorTolerance?: number;
}

/**
 * Splits a mask image into segments: 4-connected regions of equal colour (within `colorTolerance`), labelled
 * 1..S in raster order; pixels of `backgroundColor` get label 0.
 */
export function labelsFromMaskImage(
  mask: RgbImage,
  options: { backgroundColor?: RgbColor | null; colorTolerance?: number } = {},
): LabelMap {
  assertRgbImage('labelsFromMaskImage', 'mask', mask);
  const background = options.backgroundColor === undefined ? ([0, 0, 0] as const) : options.backgroundColor;
  const tolerance = options.colorTolerance ?? 0;
  const { width: w, height: h, data } = mask;
  const n = w * h;
  const parent = new Int32Array(n);
  for (let i = 0; i < n; i++) parent[i] = i;
  const find = (x: number): number => {
    while (parent[x] !== x) {
      parent[x] = parent[parent[x]];
      x = parent[x];
    }
    return x;
  };
  const similar = (p: number, q: number): boolean =>
    Math.abs(data[3 * p] - data[3 * q]) <= tolerance &&
    Math.abs(data[3 * p + 1] - data[3 * q + 1]) <= tolerance &&
    Math.abs(data[3 * p + 2] - data[3 * q + 2]) <= tolerance;
  const isBackground = new Uint8Array(n);
  if (background) {
    for (let p = 0; p < n; p++) {
      isBackground[p] =
        Math.abs(data[3 * p] - background[0]) <= tolerance &&
        Math.abs(data[3 * p + 1] - background[1]) <= tolerance &&
        Math.abs(data[3 * p + 2] - background[2]) <= tolerance
          ? 1
          : 0;
    }
  }
  const union = (p: number, q: number): void => {
    const a = find(p);
    const b = find(q);
    // Smaller index becomes the root, so roots are each region's first pixel in raster order.
    if (a < b) parent[b] = a;
    else if (b < a) parent[a] = b;
  };
  for (let y = 0; y < h; y++) {
    for (let x = 0; x < w; x++) {
      const p = y * w + x;
      if (isBackground[p]) continue;
      if (x + 1 < w && !isBackground[p + 1] && similar(p, p + 1)) union(p, p + 1);
      if (y + 1 < h && !isBackground[p + w] && similar(p, p + w)) union(p, p + w);
    }
  }
  const labels = new Int32Array(n);
  const rootLabel = new Int32Array(n);
  let next = 0;
  for (let p = 0; p < n; p++) {
    if (isBackground[p]) continue;
    const root = find(p);
    if (rootLabel[root] === 0) rootLabel[root] = ++next;
    labels[p] = rootLabel[root];
  }
  return { width: w, height: h, labels };
}

/**
 * Reads precomputed masks (the authors' SAM masks, or any other) from a folder, matching the image's file name
 * with any supported extension: `images/00012.tif` uses `<dir>/00012.png` (or `.jpg`, `.jpeg`, `.tif`, `.tiff`).
 *
 * @example
 * ```ts
 * const masks = new FolderMaskProvider({ dir: 'data/ucm/masks' });
 * const maskView = await masks.readMaskView('data/ucm/images/1.tif'); // the mask image itself
 * const labels = await masks.labelMap(image, 'data/ucm/images/1.tif'); // its equal-colour regions
 * ```
 */
export class FolderMaskProvider implements MaskProvider, MaskViewSource {
  readonly name = 'folder';
  readonly cacheKey: string;
  readonly dir: string;
  private readonly backgroundColor: RgbColor | null;
  private readonly colorTolerance: number;
  private listing: Promise<Map<string, string>> | undefined;

  constructor(options: FolderMaskProviderOptions) {
    if (typeof options?.dir !== 'string' || options.dir.length === 0) {
      throw new ConfigError('$.dir', `FolderMaskProvider needs a mask folder path, found ${JSON.stringify(options?.dir)}`);
    }
    const tolerance = options.colorTolerance ?? 0;
    if (!(Number.isInteger(tolerance) && tolerance >= 0 && tolerance <= 255)) {
      throw new ConfigError('$.colorTolerance', `must be an integer in 0-255, found ${String(tolerance)}`);
    }
    this.dir = path.resolve(options.dir);
    this.backgroundColor = options.backgroundColor === undefined ? [0, 0, 0] : options.backgroundColor;
    this.colorTolerance = tolerance;
    this.cacheKey = `folder-${hashString(this.dir).toString(16)}`;
  }

  /** Path of the mask file for `imageFile`, or an InputError naming the image when there is none. */
  async maskFileFor(imageFile: string): Promise<string> {
    const stem = path.parse(imageFile).name;
    let found = (await this.readListing(false)).get(stem);
    // The folder may have gained files since it was listed (masks written while training runs): list once more.
    found ??= (await this.readListing(true)).get(stem);
    if (!found) {
      throw new InputError(
        `no mask in ${this.dir} for this image (looked for ${stem} with ${MASK_FILE_EXTENSIONS.join(', ')})`,
        { file: imageFile },
      );
    }
    return path.join(this.dir, found);
  }

  /** The mask image itself, as RGB: already the 3-channel mask view the model takes. */
  async readMaskView(imageFile: string): Promise<RgbImage> {
    return decodeImageFile(await this.maskFileFor(imageFile));
  }

  async labelMap(image: RgbImage, imageFile: string): Promise<LabelMap> {
    assertRgbImage('FolderMaskProvider.labelMap', 'image', image);
    const maskFile = await this.maskFileFor(imageFile);
    const mask = await decodeImageFile(maskFile);
    if (mask.width !== image.width || mask.height !== image.height) {
      throw new InputError(
        `mask is ${mask.width}x${mask.height} but its image ${imageFile} is ${image.width}x${image.height}`,
        { file: maskFile },
      );
    }
    return labelsFromMaskImage(mask, { backgroundColor: this.backgroundColor, colorTolerance: this.colorTolerance });
  }

  private readListing(refresh: boolean): Promise<Map<string, string>> {
    if (!this.listing || refresh) this.listing = this.listFolder();
    return this.listing;
  }

  private async listFolder(): Promise<Map<string, string>> {
    let names: string[];
    try {
      names = await fsp.readdir(this.dir);
    } catch (error) {
      this.listing = undefined;
      throw new InputError('cannot read the mask folder', { file: this.dir, cause: error });
    }
    const byStem = new Map<string, string>();
    const rank = (name: string): number => MASK_FILE_EXTENSIONS.indexOf(path.extname(name).toLowerCase());
    for (const name of names.sort()) {
      if (rank(name) < 0) continue;
      const stem = path.parse(name).name;
      const previous = byStem.get(stem);
      if (previous === undefined || rank(name) < rank(previous)) byStem.set(stem, name);
    }
    return byStem;
  }
}
