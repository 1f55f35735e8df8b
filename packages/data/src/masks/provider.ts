import type { RenderMaskViewOptions } from './render';
import type { LabelMap, RgbImage } from './types';

/**
 * Turns an image into a label map of "potential target" segments (spec section 3). Implementations: the
 * `FolderMaskProvider` (precomputed masks, e.g. the authors' SAM masks) and the built-in `FelzenszwalbSegmenter`.
 * A SAM-class model supplied by the user plugs in here as well.
 */
export interface MaskProvider {
  /** Short human-readable name, e.g. `felzenszwalb` or `folder`. */
  readonly name: string;
  /**
   * Identifies the provider together with every setting that changes its output, so that cached masks made with
   * other settings are never reused. Safe as a folder name. Falls back to `name` when absent.
   */
  readonly cacheKey?: string;
  /**
   * How this provider's label maps are drawn when the caller gives no render options (`computeMaskView`,
   * `MaskCache`); absent: `renderMaskView`'s defaults. The v2 segmenter draws targets on a plain background.
   */
  readonly render?: RenderMaskViewOptions;
  /** Segments `image` (whose file is `imageFile`) into a label map of the same size; 0 = background. */
  labelMap(image: RgbImage, imageFile: string): Promise<LabelMap>;
}

/** A provider that already holds finished 3-channel mask views (no rendering needed), like `FolderMaskProvider`. */
export interface MaskViewSource {
  readMaskView(imageFile: string): Promise<RgbImage>;
}

export function isMaskViewSource(provider: MaskProvider): provider is MaskProvider & MaskViewSource {
  return typeof (provider as Partial<MaskViewSource>).readMaskView === 'function';
}
