/**
 * Test-only: the caption decoder's equations written again in plain TypeScript with float64 loops, reading the
 * weights of a tfjs layer by their `namedWeights()` paths. Not exported from the package.
 */
import type { S2Layer } from '@s2cpnet/core';

export type Matrix = number[][];

export interface Weight {
  shape: number[];
  values: Float64Array;
}

export type Weights = Map<string, Weight>;

export function readWeights(layer: S2Layer): Weights {
  const out: Weights = new Map();
  for (const { path, variable } of layer.namedWeights()) {
    out.set(path, { shape: variable.shape as number[], values: Float64Array.from(variable.read().dataSync()) });
  }
  return out;
}

/** `prefix/name`, or `name` when the prefix is empty (weights of a layer tested on its own). */
export function join(prefix: string, name: string): string {
  return prefix ? `${prefix}/${name}` : name;
}

function get(weights: Weights, path: string): Weight {
  const w = weights.get(path);
  if (!w) throw new Error(`reference64: no weight '${path}' (have ${[...weights.keys()].join(', ')})`);
  return w;
}

export function toMatrix(values: ArrayLike<number>, rows: number, cols: number, offset = 0): Matrix {
  return Array.from({ length: rows }, (_, r) => Array.from({ length: cols }, (_, c) => values[offset + r * cols + c]!));
}

export function linear(x: Matrix, weights: Weights, prefix: string): Matrix {
  const kernel = get(weights, join(prefix, 'kernel'));
  const bias = weights.get(join(prefix, 'bias'));
  const [inDim, outDim] = kernel.shape as [number, number];
  return x.map((row) => {
    const y = new Array<number>(outDim).fill(0);
    for (let o = 0; o < outDim; o++) {
      let s = bias ? bias.values[o]! : 0;
      for (let i = 0; i < inDim; i++) s += row[i]! * kernel.values[i * outDim + o]!;
      y[o] = s;
    }
    return y;
  });
}

export function layerNorm(x: Matrix, weights: Weights, prefix: string, epsilon = 1e-5): Matrix {
  const gamma = get(weights, join(prefix, 'gamma')).values;
  const beta = get(weights, join(prefix, 'beta')).values;
  return x.map((row) => {
    const mean = row.reduce((a, b) => a + b, 0) / row.length;
    const variance = row.reduce((a, b) => a + (b - mean) ** 2, 0) / row.length;
    return row.map((v, i) => ((v - mean) / Math.sqrt(variance + epsilon)) * gamma[i]! + beta[i]!);
  });
}

export const add = (a: Matrix, b: Matrix): Matrix => a.map((row, r) => row.map((v, c) => v + b[r]![c]!));
export const sigmoid = (v: number): number => 1 / (1 + Math.exp(-v));
export const map = (a: Matrix, f: (v: number) => number): Matrix => a.map((row) => row.map(f));

/** Multi-head attention; returns the output [Tq,d] and the weights [heads][Tq][Tk]. Causal: query i sees keys 0..i. */
export function attention(
  query: Matrix,
  source: Matrix,
  weights: Weights,
  prefix: string,
  numHeads: number,
  causal: boolean,
): { output: Matrix; weights: number[][][] } {
  const q = linear(query, weights, join(prefix, 'query'));
  const k = linear(source, weights, join(prefix, 'key'));
  const v = linear(source, weights, join(prefix, 'value'));
  const dim = q[0]!.length;
  const headDim = dim / numHeads;
  const context: Matrix = query.map(() => new Array<number>(dim).fill(0));
  const all: number[][][] = [];
  for (let h = 0; h < numHeads; h++) {
    const headWeights: number[][] = [];
    for (let i = 0; i < q.length; i++) {
      const scores = k.map((key, j) => {
        if (causal && j > i) return -Infinity;
        let s = 0;
        for (let c = 0; c < headDim; c++) s += q[i]![h * headDim + c]! * key[h * headDim + c]!;
        return s / Math.sqrt(headDim);
      });
      const max = Math.max(...scores);
      const exps = scores.map((s) => Math.exp(s - max));
      const total = exps.reduce((a, b) => a + b, 0);
      const p = exps.map((e) => e / total);
      headWeights.push(p);
      for (let c = 0; c < headDim; c++) {
        let s = 0;
        for (let j = 0; j < v.length; j++) s += p[j]! * v[j]![h * headDim + c]!;
        context[i]![h * headDim + c] = s;
      }
    }
    all.push(headWeights);
  }
  return { output: linear(context, weights, join(prefix, 'output')), weights: all };
}

export function feedForward(x: Matrix, weights: Weights, prefix: string): Matrix {
  return linear(map(linear(x, weights, join(prefix, 'inner')), (v) => Math.max(v, 0)), weights, join(prefix, 'outer'));
}

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

/** Sinusoidal positions, written independently of core's table. */
export function sinusoid(position: number, dim: number): number[] {
  return Array.from({ length: dim }, (_, i) => {
    const angle = position / 10000 ** ((2 * Math.floor(i / 2)) / dim);
    return i % 2 === 0 ? Math.sin(angle) : Math.cos(angle);
  });
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
  const table = get(weights, 'embedding/embeddings');
  const positions = get(weights, 'positions/positions');
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
