import * as tf from '@tensorflow/tfjs-core';
import type { NamedVariable } from './optimizer';

/**
 * Adds one micro-batch's gradients (`grads`, by variable name, as `tf.variableGrads` returns them) to the running
 * sums in `accumulated` (by weight path), freeing the tensors it replaces. Shared by the cross-entropy and SCST steps.
 */
export function accumulateGradients(accumulated: Map<string, tf.Tensor>, variables: readonly NamedVariable[], grads: tf.NamedTensorMap): void {
  for (const v of variables) {
    const g = grads[v.variable.name];
    if (!g) continue;
    const prev = accumulated.get(v.path);
    if (prev) {
      accumulated.set(v.path, tf.add(prev, g));
      tf.dispose([prev, g]);
    } else accumulated.set(v.path, g);
  }
}
