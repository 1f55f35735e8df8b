import { resizeBilinear } from '../image/transform';
import type { MaskProvider } from './provider';
import { renderMaskView, type RenderMaskViewOptions } from './render';
import type { RgbImage } from './types';

export interface ComputeMaskViewOptions {
  /**
   * Side of the square working size the image is resized to (bilinear, `resizeBilinear`) before segmentation;
   * `prepare` uses 224 by default (`--size`). Omitted: the image's own size.
   */
  size?: number;
  /** How the label map becomes the mask view; default the provider's own (`MaskProvider.render`), else v1's. */
  render?: RenderMaskViewOptions;
}

/**
 * The one way a mask view is computed, at training (`prepare`, `loadPreparedDataset`) and at caption time
 * (`caption`, `evaluate`) alike: resize the decoded image to the working size, segment it, render the segments.
 * The view has the working size; callers resize it to the model's input like the image.
 *
 * @example
 * ```ts
 * const view = await computeMaskView(await decodeImageFile(file), file, new FelzenszwalbSegmenter(), { size: 224 });
 * ```
 */
export async function computeMaskView(
  image: RgbImage,
  imageFile: string,
  provider: MaskProvider,
  options: ComputeMaskViewOptions = {},
): Promise<RgbImage> {
  const working = options.size === undefined ? image : resizeBilinear(image, options.size, options.size);
  const labels = await provider.labelMap(working, imageFile);
  return renderMaskView(working, labels, options.render ?? provider.render);
}
