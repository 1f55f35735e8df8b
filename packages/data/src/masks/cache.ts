import { createHash } from 'node:crypto';
import { createReadStream, existsSync } from 'node:fs';
import * as path from 'node:path';
import { ConfigError, InputError, writeFileAtomic } from '@s2cpnet/core';
import { decodeImageFile, describeFsError, encodePng } from '../image/codec';
import { resizeBilinear } from '../image/transform';
import { isMaskViewSource, type MaskProvider } from './provider';
import { renderOptionsKey, type RenderMaskViewOptions } from './render';
import type { RgbImage } from './types';
import { assertRgbImage } from './validate';
import { computeMaskView } from './view';

export interface MaskCacheOptions {
  /** Cache folder, e.g. `<dataset>/masks-cache`. One subfolder per provider setting keeps settings apart. */
  dir: string;
  provider: MaskProvider;
  /** How label maps become mask views; default the provider's own (`MaskProvider.render`), else v1's. */
  render?: RenderMaskViewOptions;
  /**
   * Working size: images are resized to `size` x `size` before segmentation (`computeMaskView`), and the views
   * have that size. `prepare` uses 224 by default. Omitted: the image's own size.
   */
  size?: number;
  /**
   * How entries are named. `content` (default): by the sha256 of the image file's bytes, so two files that share
   * a base name (`A/1.tif`, `B/1.tif`) or a file replaced in place never get another image's mask; the `image`
   * given to `get` must be the decoded content of that file. `name`: by the file's base name (`<name>.png`), the
   * layout of a prepared dataset, whose `prepare` checks that base names are unique.
   */
  keyBy?: 'content' | 'name';
}

/** Makes a provider key safe as one folder name on every OS. */
function folderSafe(key: string): string {
  return key.replace(/[^A-Za-z0-9._-]+/g, '_');
}

async function sha256OfFile(file: string): Promise<string> {
  const hash = createHash('sha256');
  try {
    for await (const chunk of createReadStream(file)) hash.update(chunk as Buffer);
  } catch (error) {
    throw new InputError(describeFsError((error as NodeJS.ErrnoException).code, 'image file'), { file, cause: error });
  }
  return hash.digest('hex');
}

/**
 * Mask views computed once and kept on disk (spec section 3: "computed once and cached next to the dataset").
 *
 * A view lives at `<dir>/<provider cacheKey>-<render key>[-w<size>]/<sha256 of the image file>.png` (`keyBy:
 * 'content'`, the default) or `<dir>/<provider cacheKey>-<render key>/<image basename>.png` (`keyBy: 'name'`),
 * written atomically so an interrupted run never leaves a half-written mask. Views are computed by
 * `computeMaskView` (resized to `size` first when given), the same function `prepare` and `caption` use. A cached
 * file whose size no longer matches is recomputed. Providers that already hold finished views on disk
 * (`FolderMaskProvider`) are read directly: the folder is the cache.
 *
 * @example
 * ```ts
 * const cache = new MaskCache({ dir: 'data/ucm/masks-cache', provider: new FelzenszwalbSegmenter(), size: 224 });
 * const maskView = await cache.get(image, 'data/ucm/images/1.tif'); // computed the first time, read afterwards
 * ```
 */
export class MaskCache {
  readonly dir: string;
  readonly provider: MaskProvider;
  readonly size: number | undefined;
  readonly keyBy: 'content' | 'name';
  /** Cache hits and computed views since construction (for progress lines and tests). */
  readonly stats = { hits: 0, computed: 0 };
  private readonly renderOptions: RenderMaskViewOptions;
  private readonly keyFolder: string;
  private readonly inFlight = new Map<string, Promise<RgbImage>>();

  constructor(options: MaskCacheOptions) {
    if (typeof options?.dir !== 'string' || options.dir.length === 0) {
      throw new ConfigError('$.dir', `MaskCache needs a cache folder path, found ${JSON.stringify(options?.dir)}`);
    }
    if (!options.provider || typeof options.provider.labelMap !== 'function') {
      throw new ConfigError('$.provider', 'MaskCache needs a MaskProvider (an object with labelMap(image, file))');
    }
    if (options.size !== undefined && !(Number.isInteger(options.size) && options.size >= 1)) {
      throw new ConfigError('$.size', `expected a positive integer working size, found ${JSON.stringify(options.size)}`);
    }
    const keyBy = options.keyBy ?? 'content';
    if (keyBy !== 'content' && keyBy !== 'name') throw new ConfigError('$.keyBy', `expected "content" or "name", found ${JSON.stringify(keyBy)}`);
    this.dir = path.resolve(options.dir);
    this.provider = options.provider;
    this.size = options.size;
    this.keyBy = keyBy;
    this.renderOptions = options.render ?? options.provider.render ?? {};
    // By name, the working size is not in the folder name (a prepared folder has one size, recorded in its
    // manifest; a cached view of another size is recomputed). By content, every setting is in the key.
    const sizeKey = keyBy === 'content' && options.size !== undefined ? `-w${options.size}` : '';
    this.keyFolder = folderSafe(`${options.provider.cacheKey ?? options.provider.name}-${renderOptionsKey(this.renderOptions)}${sizeKey}`);
  }

  /** The folder this cache's views are written to (one per provider and render setting). */
  get folder(): string {
    return path.join(this.dir, this.keyFolder);
  }

  /** Where the mask view of `imageFile` is (or will be) cached by name (`keyBy: 'name'`); see `entryFor`. */
  fileFor(imageFile: string): string {
    if (this.keyBy !== 'name') throw new ConfigError('$.keyBy', 'fileFor names entries by base name; this cache keys them by content: use entryFor');
    return path.join(this.folder, `${path.parse(imageFile).name}.png`);
  }

  /** Where the mask view of `imageFile` is (or will be) cached; by content this reads and hashes the file. */
  async entryFor(imageFile: string): Promise<string> {
    return this.keyBy === 'name' ? this.fileFor(imageFile) : path.join(this.folder, `${await sha256OfFile(imageFile)}.png`);
  }

  /**
   * The mask view of `image`, the decoded content of `imageFile`: `size` x `size` when a working size is set,
   * else the image's size; 3 channels.
   */
  async get(image: RgbImage, imageFile: string): Promise<RgbImage> {
    assertRgbImage('MaskCache.get', 'image', image);
    if (isMaskViewSource(this.provider)) return this.readProvided(image, imageFile);
    const file = await this.entryFor(imageFile);
    // Two concurrent requests for one image share one computation (and one write).
    let pending = this.inFlight.get(file);
    if (!pending) {
      pending = this.load(image, imageFile, file).finally(() => this.inFlight.delete(file));
      this.inFlight.set(file, pending);
    }
    return pending;
  }

  private async readProvided(image: RgbImage, imageFile: string): Promise<RgbImage> {
    const source = this.provider as MaskProvider & { readMaskView(file: string): Promise<RgbImage> };
    const view = await source.readMaskView(imageFile);
    if (view.width !== image.width || view.height !== image.height) {
      throw new InputError(
        `mask is ${view.width}x${view.height} but the image is ${image.width}x${image.height}`,
        { file: imageFile },
      );
    }
    this.stats.hits++;
    // A finished view has the image's size; with a working size it is resized like a computed one.
    return this.size === undefined ? view : resizeBilinear(view, this.size, this.size);
  }

  private async load(image: RgbImage, imageFile: string, file: string): Promise<RgbImage> {
    const width = this.size ?? image.width;
    const height = this.size ?? image.height;
    if (existsSync(file)) {
      try {
        const cached = await decodeImageFile(file);
        if (cached.width === width && cached.height === height) {
          this.stats.hits++;
          return cached;
        }
      } catch {
        // An unreadable cache entry (e.g. truncated by a disk error) is simply recomputed and overwritten.
      }
    }
    const view = await computeMaskView(image, imageFile, this.provider, { size: this.size, render: this.renderOptions });
    await writeFileAtomic(file, encodePng(view));
    this.stats.computed++;
    return view;
  }
}
