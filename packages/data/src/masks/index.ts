/**
 * Masks (spec section 3): providers that turn an image into a label map of potential targets, the renderer that
 * makes the 3-channel mask view, and the on-disk cache.
 */
export type { LabelMap, RgbImage } from './types';
export { isMaskViewSource, type MaskProvider, type MaskViewSource } from './provider';
export {
  FelzenszwalbSegmenter,
  FELZENSZWALB_DEFAULTS,
  segmentFelzenszwalb,
  validateFelzenszwalbOptions,
  type FelzenszwalbOptions,
} from './felzenszwalb';
export {
  TargetSegmenter,
  TARGET_SEGMENTER_DEFAULTS,
  TARGET_RENDER_DEFAULTS,
  segmentTargets,
  targetFeatureImage,
  validateTargetSegmenterOptions,
  type TargetSegmenterOptions,
} from './targets';
export {
  builtInMasksVersion,
  createBuiltInSegmenter,
  DEFAULT_MASKS_VERSION,
  isMasksVersion,
  MASKS_VERSIONS,
  parseMasksVersion,
  type MasksVersion,
} from './versions';
export {
  FolderMaskProvider,
  MASK_FILE_EXTENSIONS,
  labelsFromMaskImage,
  type FolderMaskProviderOptions,
} from './folder';
export {
  renderMaskView,
  renderOptionsKey,
  RENDER_MASK_VIEW_DEFAULTS,
  type RenderMaskViewOptions,
  type RgbColor,
} from './render';
export { MaskCache, type MaskCacheOptions } from './cache';
export { computeMaskView, type ComputeMaskViewOptions } from './view';
export {
  benchmarkSegmenter,
  benchmarkImage,
  loadBenchmarkImages,
  type SegmenterBenchmarkOptions,
  type SegmenterBenchmarkResult,
} from './bench';
