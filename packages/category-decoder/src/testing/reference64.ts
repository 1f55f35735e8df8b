/**
 * Test-only: the category heads' equations written again in plain TypeScript with float64 loops, reading the
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

/** Sinusoidal positions, written independently of core's table. */
export function sinusoid(position: number, dim: number): number[] {
  return Array.from({ length: dim }, (_, i) => {
    const angle = position / 10000 ** ((2 * Math.floor(i / 2)) / dim);
    return i % 2 === 0 ? Math.sin(angle) : Math.cos(angle);
  });
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
