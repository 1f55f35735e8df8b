import * as tf from '@tensorflow/tfjs-core';
import type * as tfl from '@tensorflow/tfjs-layers';
import { S2Layer, type LayerVariable } from '../layer';
import { SeededRng } from '../rng';

/** A weight with its stable path. */
export interface PathedWeight {
  path: string;
  variable: LayerVariable;
}

/** Every weight with its stable path: S2Layer's `namedWeights()`, or tfjs' weight names for other layers. */
export function namedWeightsOf(layer: tfl.layers.Layer): PathedWeight[] {
  if (layer instanceof S2Layer) return layer.namedWeights();
  return layer.weights.map((variable) => ({ path: variable.originalName, variable }));
}

/** Every weight's value as nested arrays, keyed by path. */
export function weightArrays(layer: tfl.layers.Layer): Record<string, unknown> {
  const out: Record<string, unknown> = {};
  for (const { path, variable } of namedWeightsOf(layer)) out[path] = variable.read().arraySync();
  return out;
}

/** Writes `values` (same size as the weight) into `variable`, without leaking the temporary tensor. */
function writeValues(variable: LayerVariable, values: Float32Array): void {
  const value = tf.tensor(values, variable.shape as number[]);
  variable.write(value);
  value.dispose();
}

function sizeOf(variable: LayerVariable): number {
  return variable.shape.reduce((a: number, b) => a * (b ?? 1), 1);
}

/**
 * Overwrites every weight with seeded random values (`spread` times standard normal), so that equations are
 * tested with non-trivial biases, norm offsets and batch-norm statistics (initial values are often 0 or 1).
 * Weights named `gamma` become 1 + 0.3·N(0,1), and `moving_variance` stays positive (0.5 + U[0,1)).
 */
export function randomizeWeights(layer: tfl.layers.Layer, seed: number, spread = 0.5): void {
  const rng = new SeededRng(seed);
  for (const { path, variable } of namedWeightsOf(layer)) {
    const size = sizeOf(variable);
    const values = new Float32Array(size);
    const leaf = path.split('/').pop()!;
    for (let i = 0; i < size; i++) {
      if (leaf === 'moving_variance') values[i] = 0.5 + rng.next();
      else if (leaf === 'gamma') values[i] = 1 + 0.3 * rng.normal();
      else values[i] = spread * rng.normal();
    }
    writeValues(variable, values);
  }
}

/**
 * Adds seeded noise of standard deviation `scale` to every weight (keeping the initial values underneath), so tests
 * exercise biases and layer-norm parameters that start at exactly 0 and 1. Keep `scale` small in gradient checks:
 * large random weights make the function so curved (and ReLU kinks so close) that float32 finite differences stop
 * being informative.
 */
export function perturbWeights(layer: tfl.layers.Layer, seed: number, scale = 0.3): void {
  const rng = new SeededRng(seed);
  for (const { variable } of namedWeightsOf(layer)) {
    const size = sizeOf(variable);
    const current = variable.read().dataSync();
    writeValues(
      variable,
      Float32Array.from({ length: size }, (_, i) => current[i]! + scale * rng.normal()),
    );
  }
}

/** Copies weights from `source` into `target` by path; throws when the path sets differ. */
export function copyWeightsByPath(source: tfl.layers.Layer, target: tfl.layers.Layer): void {
  const from = new Map(namedWeightsOf(source).map((w) => [w.path, w.variable]));
  const to = namedWeightsOf(target);
  const missing = to.filter((w) => !from.has(w.path)).map((w) => w.path);
  if (missing.length > 0 || to.length !== from.size) {
    throw new Error(`copyWeightsByPath: path sets differ (${to.length} vs ${from.size}; missing ${missing.join(', ')})`);
  }
  for (const { path, variable } of to) variable.write(from.get(path)!.read());
}

/**
 * Frees a layer's weights. tfjs' `Layer.dispose()` refuses layers that were never called through `apply()`
 * ("has not been used yet"), which is how S²CPNet layers are used, so tests free the variables directly.
 */
export function disposeWeights(layer: tfl.layers.Layer): void {
  for (const { variable } of namedWeightsOf(layer)) variable.dispose();
}

/** A linear layer's weights as nested arrays: kernel [in][out], optional bias [out]. */
export interface LinearWeightArrays {
  kernel: number[][];
  bias?: number[];
}

/** A layer norm's weights as arrays. */
export interface NormWeightArrays {
  gamma: number[];
  beta: number[];
}

/** A batch norm's weights and running statistics as arrays. */
export interface BatchNormWeightArrays extends NormWeightArrays {
  movingMean: number[];
  movingVariance: number[];
}

/** The four projections of a multi-head attention block. */
export interface AttentionWeightArrays {
  query: LinearWeightArrays;
  key: LinearWeightArrays;
  value: LinearWeightArrays;
  output: LinearWeightArrays;
}

/** The two linear layers of a feed-forward block. */
export interface FeedForwardWeightArrays {
  inner: LinearWeightArrays;
  outer: LinearWeightArrays;
}

/**
 * Typed read access to a layer's weights as nested arrays (a snapshot taken by `weightArrays`), by path, for
 * float64 reference implementations. Block accessors follow core's naming (`kernel`/`bias`, `gamma`/`beta`,
 * `query`/`key`/`value`/`output`, `inner`/`outer`).
 *
 * @example
 * const w = WeightTable.of(layer);
 * const { kernel, bias } = w.scoped('unit0').linear('projection');
 */
export class WeightTable {
  constructor(
    private readonly values: Record<string, unknown>,
    private readonly prefix = '',
  ) {}

  /** The same table seen from a child: `scoped('unit0').vector('x')` reads `unit0/x`. */
  scoped(child: string): WeightTable {
    return new WeightTable(this.values, `${this.prefix}${child}/`);
  }

  /** A snapshot of `layer`'s current weights. */
  static of(layer: tfl.layers.Layer): WeightTable {
    return new WeightTable(weightArrays(layer));
  }

  private get<T>(relative: string): T {
    const path = `${this.prefix}${relative}`;
    if (!(path in this.values)) throw new Error(`WeightTable: no weight '${path}'; have ${Object.keys(this.values).join(', ')}`);
    return this.values[path] as T;
  }

  vector(path: string): number[] {
    return this.get<number[]>(path);
  }

  matrix(path: string): number[][] {
    return this.get<number[][]>(path);
  }

  kernel4d(path: string): number[][][][] {
    return this.get<number[][][][]>(path);
  }

  linear(prefix: string, bias = true): LinearWeightArrays {
    return bias ? { kernel: this.matrix(`${prefix}/kernel`), bias: this.vector(`${prefix}/bias`) } : { kernel: this.matrix(`${prefix}/kernel`) };
  }

  /** A 1x1 conv kernel [1][1][in][out] as a linear layer. */
  pointwise(prefix: string, bias: boolean): LinearWeightArrays {
    const kernel = this.kernel4d(`${prefix}/kernel`)[0]![0]!;
    return bias ? { kernel, bias: this.vector(`${prefix}/bias`) } : { kernel };
  }

  norm(prefix: string): NormWeightArrays {
    return { gamma: this.vector(`${prefix}/gamma`), beta: this.vector(`${prefix}/beta`) };
  }

  batchNorm(prefix: string): BatchNormWeightArrays {
    return {
      ...this.norm(prefix),
      movingMean: this.vector(`${prefix}/moving_mean`),
      movingVariance: this.vector(`${prefix}/moving_variance`),
    };
  }

  attention(prefix: string): AttentionWeightArrays {
    return {
      query: this.linear(`${prefix}/query`),
      key: this.linear(`${prefix}/key`),
      value: this.linear(`${prefix}/value`),
      output: this.linear(`${prefix}/output`),
    };
  }

  feedForward(prefix: string): FeedForwardWeightArrays {
    return { inner: this.linear(`${prefix}/inner`), outer: this.linear(`${prefix}/outer`) };
  }
}
