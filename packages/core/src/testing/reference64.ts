/**
 * Core's blocks (Linear, LayerNorm, MultiHeadAttention, FeedForward, sinusoidal positions) written again in plain
 * TypeScript with float64 loops, reading the weights of a tfjs layer by their `namedWeights()` paths, for tests that
 * compare a component against its equations. Exported from `@s2cpnet/core/testing` as the `reference64` namespace.
 */
import type * as tf from '@tensorflow/tfjs-core';
import type * as tfl from '@tensorflow/tfjs-layers';
import { namedWeightsOf } from './layer-weights';

/** Rows of values: [rows][columns]. */
export type Matrix = number[][];

/** One weight as flat float64 values (row-major) with its shape. */
export interface Weight {
  shape: number[];
  values: Float64Array;
}

/** A layer's weights by path. */
export type Weights = Map<string, Weight>;

/** A float64 snapshot of every weight of `layer`, by path. */
export function readWeights(layer: tfl.layers.Layer): Weights {
  const out: Weights = new Map();
  for (const { path, variable } of namedWeightsOf(layer)) {
    out.set(path, { shape: variable.shape as number[], values: Float64Array.from(variable.read().dataSync()) });
  }
  return out;
}

/** `prefix/name`, or `name` when the prefix is empty (weights of a layer tested on its own). */
export function join(prefix: string, name: string): string {
  return prefix ? `${prefix}/${name}` : name;
}

/** The weight at `path`; the error lists the paths there are. */
export function getWeight(weights: Weights, path: string): Weight {
  const w = weights.get(path);
  if (!w) throw new Error(`reference64: no weight '${path}' (have ${[...weights.keys()].join(', ')})`);
  return w;
}

/** `rows` x `cols` values of a flat row-major array, starting at `offset`. */
export function toMatrix(values: ArrayLike<number>, rows: number, cols: number, offset = 0): Matrix {
  return Array.from({ length: rows }, (_, r) => Array.from({ length: cols }, (_, c) => values[offset + r * cols + c]!));
}

/** A [B, rows, cols] tensor as B matrices. */
export function matrices(t: tf.Tensor): Matrix[] {
  return t.arraySync() as Matrix[];
}

/** x·kernel + bias with the Linear at `prefix` (`prefix/kernel` [in,out]; `prefix/bias` when present). */
export function linear(x: Matrix, weights: Weights, prefix: string): Matrix {
  const kernel = getWeight(weights, join(prefix, 'kernel'));
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

/** Layer norm of each row with `prefix/gamma` and `prefix/beta` (population variance). */
export function layerNorm(x: Matrix, weights: Weights, prefix: string, epsilon = 1e-5): Matrix {
  const gamma = getWeight(weights, join(prefix, 'gamma')).values;
  const beta = getWeight(weights, join(prefix, 'beta')).values;
  return x.map((row) => {
    const mean = row.reduce((a, b) => a + b, 0) / row.length;
    const variance = row.reduce((a, b) => a + (b - mean) ** 2, 0) / row.length;
    return row.map((v, i) => ((v - mean) / Math.sqrt(variance + epsilon)) * gamma[i]! + beta[i]!);
  });
}

/** Element-wise a + b. */
export const add = (a: Matrix, b: Matrix): Matrix => a.map((row, r) => row.map((v, c) => v + b[r]![c]!));
export const sigmoid = (v: number): number => 1 / (1 + Math.exp(-v));
/** `f` applied to every element. */
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

/** outer(relu(inner(x))) with the FeedForward at `prefix`. */
export function feedForward(x: Matrix, weights: Weights, prefix: string): Matrix {
  return linear(map(linear(x, weights, join(prefix, 'inner')), (v) => Math.max(v, 0)), weights, join(prefix, 'outer'));
}

/** Sinusoidal positions, written independently of core's table. */
export function sinusoid(position: number, dim: number): number[] {
  return Array.from({ length: dim }, (_, i) => {
    const angle = position / 10000 ** ((2 * Math.floor(i / 2)) / dim);
    return i % 2 === 0 ? Math.sin(angle) : Math.cos(angle);
  });
}
