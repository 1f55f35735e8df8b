import * as tf from '@tensorflow/tfjs-core';
import { upsampleNearest } from '@s2cpnet/core';
import type { GridPlan } from './config';

/**
 * Brings a native feature grid to the planned grid: identity, nearest-neighbour upsampling (core's reshape +
 * broadcast form, whose gradient is right on every backend, unlike `resizeNearestNeighbor`'s on cpu at batch > 1),
 * or 'valid' average pooling (whose gradient is right on both backends; 'same' pooling's is not).
 */
export function resampleGrid(features: tf.Tensor4D, plan: GridPlan): tf.Tensor4D {
  if (plan.mode === 'identity') return features;
  if (plan.mode === 'upsample') return upsampleNearest(features, plan.factor);
  return tf.avgPool(features, plan.factor, plan.factor, 'valid');
}
