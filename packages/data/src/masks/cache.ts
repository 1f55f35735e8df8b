import { existsSync } from 'node:fs';
import * as path from 'node:path';
import { ConfigError, InputError, writeFileAtomic } from '@s2cpnet/core';
import { decodeImageFile, encodePng } from '../image/codec';
import { isMaskViewSource, type MaskProvider } from './provider';
import { renderMaskView, renderOptionsKey, type RenderMaskViewOptions } from './render';
import type { RgbImage } from './types';
import { assertRgbImage } from './validate';

export interface MaskCacheOptions {
  /** Cache folder, e.g. `<dataset>/masks-cache`. One subfolder per provider setting keeps settings apart. */
  dir: string;
  provider: MaskProvider;
  /** How label maps become mask views. */
  render?: RenderMaskViewOptions;
}

/** Makes a provider key safe as one folder name on every OS. */
function folderSafe(key: string): string {
  return key.replace(/[^A-Za-z0-9._-]+/g, '_');
}

/**
 * Mask views computed once and kept on disk (spec section 3: "computed once and cached next to the dataset").
 *
 * A view lives at `<dir>/<provider cacheKey>-<render key>/<image basename>.png`, written atomically so an
 * interrupted run never leaves a half-written mask. A cached file whose size no longer matches the image is
 * recomputed. Providers that already hold finished views on disk (`FolderMaskProvider`) are read directly: the
 * folder is the cache.
 *
 * @example
 * ```ts
 * const cache = new MaskCache({ dir: 'data/ucm/masks-cache', provider: new FelzenszwalbSegmenter() });
 * const maskView = await cache.get(image, 'data/ucm/images/1.tif'); // computed the first time, read afterwards
 * ```
 */
export class MaskCache {
  readonly dir: string;
  readonly provider: MaskProvider;
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
    this.dir = path.resolve(options.dir);
    this.provider = options.provider;
    this.renderOptions = options.render ?? {};
    this.keyFolder = folderSafe(`${options.provider.cacheKey ?? options.provider.name}-${renderOptionsKey(this.renderOptions)}`);
  }

  /** Where the mask view of `imageFile` is (or will be) cached. */
  fileFor(imageFile: string): string {
    return path.join(this.dir, this.keyFolder, `${path.parse(imageFile).name}.png`);
  }

  /** The mask view of `image` (read from `imageFile`): same size as the image, 3 channels. */
  get(image: RgbImage, imageFile: string): Promise<RgbImage> {
    try {
      assertRgbImage('MaskCache.get', 'image', image);
    } catch (error) {
      return Promise.reject(error);
    }
    if (isMaskViewSource(this.provider)) return this.readProvided(image, imageFile);
    const file = this.fileFor(imageFile);
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
    return view;
  }

  private async load(image: RgbImage, imageFile: string, file: string): Promise<RgbImage> {
    if (existsSync(file)) {
      try {
        const cached = await decodeImageFile(file);
        if (cached.width === image.width && cached.height === image.height) {
          this.stats.hits++;
          return cached;
        }
      } catch {
        // An unreadable cache entry (e.g. truncated by a disk error) is simply recomputed and overwritten.
      }
    }
    const labels = await this.provider.labelMap(image, imageFile);
    const view = renderMaskView(image, labels, this.renderOptions);
    await writeFileAtomic(file, encodePng(view));
    this.stats.computed++;
    return view;
  }
}
