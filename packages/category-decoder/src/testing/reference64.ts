/**
 * Test-only: the category heads' equations written again in plain TypeScript with float64 loops, reading the
 * weights of a tfjs layer by their `namedWeights()` paths, on top of core's float64 blocks (`reference64`).
 * Not exported from the package.
 */
import { reference64 } from '@s2cpnet/core/testing';

type Matrix = reference64.Matrix;
type Weights = reference64.Weights;
const { add, attention, feedForward, join, layerNorm, linear, sinusoid, toMatrix } = reference64;

/** Post-norm layer: LN(x + SelfMHA(x)), LN(. + MHA(., M, M)), LN(. + FFN(.)). */
export function postNormLayer(x: Matrix, memory: Matrix, weights: Weights, prefix: string, numHeads: number, causal: boolean): Matrix {
  const afterSelf = layerNorm(add(x, attention(x, x, weights, join(prefix, 'selfAttention'), numHeads, causal).output), weights, join(prefix, 'selfNorm'));
  const afterCross = layerNorm(
    add(afterSelf, attention(afterSelf, memory, weights, join(prefix, 'crossAttention'), numHeads, false).output),
    weights,
    join(prefix, 'crossNorm'),
  );
  return layerNorm(add(afterCross, feedForward(afterCross, weights, join(prefix, 'feedForward'))), weights, join(prefix, 'outputNorm'));
}

/** Multi-label head for ONE image: memory [N,D] -> K logits. */
export function multiLabelLogits(weights: Weights, numHeads: number, memory: Matrix, classifier: 'per-class' | 'shared'): number[] {
  const queries = weights.get('classQueries')!;
  const [k, d] = queries.shape as [number, number];
  const q = toMatrix(queries.values, k, d);
  const features = postNormLayer(q, linear(memory, weights, 'memoryProjection'), weights, 'layer', numHeads, false);
  if (classifier === 'shared') return linear(features, weights, 'classifier').map((row) => row[0]!);
  const w = weights.get('classWeights')!.values;
  const b = weights.get('classBiases')!.values;
  return features.map((row, c) => row.reduce((s, v, i) => s + v * w[c * d + i]!, b[c]!));
}

/** Next-noun head for ONE image, teacher-forced: inputs (start + shifted targets) [S] -> step logits [S,V]. */
export function nextNounLogits(weights: Weights, numHeads: number, numLayers: number, memory: Matrix, inputs: readonly number[]): Matrix {
  const table = weights.get('embedding/embeddings')!;
  const positions = weights.get('positions/positions')!;
  const d = table.shape[1]!;
  let x: Matrix = inputs.map((token, t) => {
    const wave = sinusoid(t, d);
    return Array.from({ length: d }, (_, c) => Math.sqrt(d) * table.values[token * d + c]! + wave[c]! + positions.values[t * d + c]!);
  });
  const projected = linear(memory, weights, 'memoryProjection');
  for (let l = 0; l < numLayers; l++) x = postNormLayer(x, projected, weights, `layer${l}`, numHeads, true);
  return linear(x, weights, 'head');
}

/** Mean binary cross-entropy from probabilities computed in float64 (the textbook form). */
export function binaryCrossEntropy(logits: number[][], targets: number[][]): number {
  let total = 0;
  let count = 0;
  logits.forEach((row, b) =>
    row.forEach((z, k) => {
      const p = 1 / (1 + Math.exp(-z));
      const y = targets[b]![k]!;
      total += -(y * Math.log(p) + (1 - y) * Math.log(1 - p));
      count++;
    }),
  );
  return total / count;
}
