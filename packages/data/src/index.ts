/**
 * @s2cpnet/data: caption datasets (Karpathy, NWPU-Captions, COCO), image IO, vocabulary, target nouns, masks,
 * batching and a synthetic aerial set.
 *
 * @example
 * ```ts
 * import { loadCaptionDataset, Vocabulary, buildCategoryLabels } from '@s2cpnet/data';
 * const dataset = await loadCaptionDataset('data/ucm/dataset.json', { imagesDir: 'data/ucm/images' });
 * const vocabulary = Vocabulary.build(dataset, { minWordFreq: 5 });
 * const categories = buildCategoryLabels(dataset);
 * ```
 * @packageDocumentation
 */
export * from './dataset/types';
export { loadCaptionDataset, parseCaptionDataset, detectCaptionFormat, countBySplit, imagesOfSplit, type LoadCaptionDatasetOptions } from './dataset/load';
export { tokenizeCaption, normalizeTokens } from './dataset/tokenize';
export { resolveImagePath, realImagePath, listImageFolder, IMAGE_EXTENSIONS } from './dataset/paths';

// Explicit names win over the masks module's star export of its own codec helpers.
export {
  decodeImageFile,
  decodeImageBuffer,
  encodePng,
  probeImageFile,
  parsePixelCount,
  maxImagePixels,
  describeFsError,
  DEFAULT_MAX_IMAGE_PIXELS,
  type DecodeImageOptions,
} from './image/codec';
export * from './image/transform';
export { VIRIDIS_STOPS, viridis, viridisCssGradient, cieLightness } from './image/colormap';

export * from './vocab/vocabulary';

export * from './nouns/lexicon';
export * from './nouns/extractor';
export * from './nouns/categories';

export * from './batch/feature-cache';
export * from './batch/pipeline';
export * from './batch/tensors';

export * from './prepare/prepare';
export * from './prepare/manifest';

export * from './masks/index';
export * from './synthetic/index';
