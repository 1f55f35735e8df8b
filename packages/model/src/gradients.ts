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

/**
 * Reads scalar tensors with one asynchronous read each (GPU backends have no synchronous reads) and disposes them;
 * a null entry reads as NaN.
 */
export async function readScalars(scalars: readonly (tf.Tensor | null)[]): Promise<number[]> {
  try {
    return await Promise.all(scalars.map(async (t) => (t ? (await t.data())[0]! : Number.NaN)));
  } finally {
    tf.dispose(scalars.filter((t): t is tf.Tensor => t !== null));
  }
}
