import * as tf from '@tensorflow/tfjs-core';
import type { Batch } from './pipeline';

/** A batch as tfjs tensors. The caller owns them: dispose with `disposeBatchTensors` (or inside `tf.tidy`). */
export interface BatchTensors {
  /** [B, S, S, 3] float32, or null with cached features. */
  images: tf.Tensor4D | null;
  /** [B, S, S, 3] float32, or null. */
  masks: tf.Tensor4D | null;
  /** [B, ...featureShape] float32, or null. */
  imageFeatures: tf.Tensor | null;
  maskFeatures: tf.Tensor | null;
  /** [B, C, T] int32 caption ids. */
  captions: tf.Tensor3D;
  /** [B] int32 real caption rows per image. */
  captionCounts: tf.Tensor1D;
  /** [B, K] float32 multi-hot targets, or null. */
  categories: tf.Tensor2D | null;
}

/**
 * Converts a pipeline batch (plain typed arrays) to tfjs tensors on the active backend.
 *
 * @example
 * ```ts
 * const tensors = batchToTensors(batch);
 * try { step(tensors); } finally { disposeBatchTensors(tensors); }
 * ```
 */
export function batchToTensors(batch: Batch): BatchTensors {
  const b = batch.batchSize;
  const s = batch.imageSize;
  const featureShape = batch.featureShape ? [b, ...batch.featureShape] : null;
  return {
    images: batch.images ? tf.tensor4d(batch.images, [b, s, s, 3], 'float32') : null,
    masks: batch.masks ? tf.tensor4d(batch.masks, [b, s, s, 3], 'float32') : null,
    imageFeatures: batch.imageFeatures && featureShape ? tf.tensor(batch.imageFeatures, featureShape, 'float32') : null,
    maskFeatures: batch.maskFeatures && featureShape ? tf.tensor(batch.maskFeatures, featureShape, 'float32') : null,
    captions: tf.tensor3d(batch.captions, [b, batch.captionsPerImage, batch.captionLength], 'int32'),
    captionCounts: tf.tensor1d(batch.captionCounts, 'int32'),
    categories: batch.categories ? tf.tensor2d(batch.categories, [b, batch.numClasses], 'float32') : null,
  };
}

/** Disposes every tensor of a converted batch. */
export function disposeBatchTensors(tensors: BatchTensors): void {
  for (const value of Object.values(tensors)) if (value) (value as tf.Tensor).dispose();
}
