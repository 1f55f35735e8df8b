/**
 * Test-only: the caption decoder's equations written again in plain TypeScript with float64 loops, reading the
 * weights of a tfjs layer by their `namedWeights()` paths, on top of core's float64 blocks (`reference64`).
 * Not exported from the package.
 */
import { reference64 } from '@s2cpnet/core/testing';

type Matrix = reference64.Matrix;
type Weights = reference64.Weights;
const { add, attention, feedForward, getWeight, join, layerNorm, linear, map, sigmoid, sinusoid } = reference64;

/** The gate of Eq. 6 ('paper') or of the released code ('reference'). */
export function gate(text: Matrix, visual: Matrix, layerInput: Matrix, weights: Weights, prefix: string, variant: 'paper' | 'reference'): Matrix {
  const selfGate = (x: Matrix) => map(x, (v) => (variant === 'paper' ? sigmoid(v) * v : (1 + sigmoid(v)) * v));
  const fused = add(layerNorm(selfGate(visual), weights, join(prefix, 'visualGateNorm')), layerNorm(selfGate(text), weights, join(prefix, 'textGateNorm')));
  return add(fused, variant === 'paper' ? layerInput : text);
}

export interface LayerResult {
  output: Matrix;
  crossAttention: number[][][];
}

export function gatedLayer(w: Matrix, memory: Matrix, weights: Weights, prefix: string, numHeads: number, variant: 'paper' | 'reference'): LayerResult {
  const text = layerNorm(add(w, attention(w, w, weights, join(prefix, 'selfAttention'), numHeads, true).output), weights, join(prefix, 'textNorm'));
  const cross = attention(text, memory, weights, join(prefix, 'crossAttention'), numHeads, false);
  const fused = gate(text, cross.output, w, weights, prefix, variant);
  const output = layerNorm(add(fused, feedForward(fused, weights, join(prefix, 'feedForward'))), weights, join(prefix, 'outputNorm'));
  return { output, crossAttention: cross.weights };
}

export function plainLayer(w: Matrix, memory: Matrix, weights: Weights, prefix: string, numHeads: number): LayerResult {
  const afterSelf = layerNorm(add(w, attention(w, w, weights, join(prefix, 'selfAttention'), numHeads, true).output), weights, join(prefix, 'selfNorm'));
  const cross = attention(afterSelf, memory, weights, join(prefix, 'crossAttention'), numHeads, false);
  const afterCross = layerNorm(add(afterSelf, cross.output), weights, join(prefix, 'crossNorm'));
  const output = layerNorm(add(afterCross, feedForward(afterCross, weights, join(prefix, 'feedForward'))), weights, join(prefix, 'outputNorm'));
  return { output, crossAttention: cross.weights };
}

export interface DecoderShape {
  layerType: 'gated' | 'plain' | 'gated-reference';
  dim: number;
  numLayers: number;
  numHeads: number;
}

/** The whole decoder for ONE caption: `memory` [N,D], `tokens` [T] -> logits [T,V] and per-layer cross-attention. */
export function decoderForward(
  weights: Weights,
  shape: DecoderShape,
  memory: Matrix,
  tokens: readonly number[],
): { logits: Matrix; crossAttention: number[][][][] } {
  const table = getWeight(weights, 'embedding/embeddings');
  const positions = getWeight(weights, 'positions/positions');
  const d = shape.dim;
  let x: Matrix = tokens.map((token, t) => {
    const wave = sinusoid(t, d);
    return Array.from({ length: d }, (_, c) => Math.sqrt(d) * table.values[token * d + c]! + wave[c]! + positions.values[t * d + c]!);
  });
  const projected = linear(memory, weights, 'memoryProjection');
  const crossAttention: number[][][][] = [];
  for (let l = 0; l < shape.numLayers; l++) {
    const prefix = `layer${l}`;
    const result =
      shape.layerType === 'plain'
        ? plainLayer(x, projected, weights, prefix, shape.numHeads)
        : gatedLayer(x, projected, weights, prefix, shape.numHeads, shape.layerType === 'gated' ? 'paper' : 'reference');
    x = result.output;
    crossAttention.push(result.crossAttention);
  }
  return { logits: linear(x, weights, 'head'), crossAttention };
}

/** Mean cross-entropy over non-pad targets, with optional label smoothing, in float64. */
export function crossEntropy(logits: Matrix[], targets: number[][], padId: number, smoothing: number): number {
  let total = 0;
  let count = 0;
  logits.forEach((rows, b) =>
    rows.forEach((row, t) => {
      const target = targets[b]![t]!;
      if (target === padId) return;
      const max = Math.max(...row);
      const logSum = max + Math.log(row.reduce((a, v) => a + Math.exp(v - max), 0));
      const logProbs = row.map((v) => v - logSum);
      const nll = -logProbs[target]!;
      const uniform = -logProbs.reduce((a, v) => a + v, 0) / row.length;
      total += (1 - smoothing) * nll + smoothing * uniform;
      count++;
    }),
  );
  return count === 0 ? 0 : total / count;
}
