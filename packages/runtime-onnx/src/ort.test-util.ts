import * as ort from 'onnxruntime-node';
import * as tf from '@tensorflow/tfjs-core';
import type { OnnxGraph } from './graph';

/** Runs a graph under construction in onnxruntime-node (1 thread) and returns its outputs as plain arrays. */
export async function runGraph(
  g: OnnxGraph,
  feeds: Record<string, tf.Tensor | { data: Float32Array | BigInt64Array | Int32Array; shape: number[] }>,
): Promise<Record<string, { data: Float32Array; shape: number[] }>> {
  const session = await ort.InferenceSession.create(g.serialize(), { intraOpNumThreads: 1, interOpNumThreads: 1, graphOptimizationLevel: 'all' });
  try {
    const inputs: Record<string, ort.Tensor> = {};
    for (const [name, value] of Object.entries(feeds)) {
      if (value instanceof tf.Tensor) {
        const data = value.dataSync();
        inputs[name] = value.dtype === 'int32'
          ? new ort.Tensor('int64', BigInt64Array.from(Array.from(data as Int32Array, (v) => BigInt(v))), value.shape)
          : new ort.Tensor('float32', Float32Array.from(data as Float32Array), value.shape);
      } else {
        const type = value.data instanceof BigInt64Array ? 'int64' : value.data instanceof Int32Array ? 'int32' : 'float32';
        inputs[name] = new ort.Tensor(type, value.data, value.shape);
      }
    }
    const out = await session.run(inputs);
    const result: Record<string, { data: Float32Array; shape: number[] }> = {};
    for (const [name, t] of Object.entries(out)) result[name] = { data: t.data as Float32Array, shape: [...t.dims] };
    return result;
  } finally {
    await session.release();
  }
}

/** Largest absolute difference between two float arrays of the same length (Infinity when lengths differ). */
export function maxAbsDiff(a: ArrayLike<number>, b: ArrayLike<number>): number {
  if (a.length !== b.length) return Infinity;
  let worst = 0;
  for (let i = 0; i < a.length; i++) worst = Math.max(worst, Math.abs(a[i]! - b[i]!));
  return worst;
}
