import * as tf from '@tensorflow/tfjs-core';
import type * as tfl from '@tensorflow/tfjs-layers';
import { SeededRng } from '../rng';
import { WeightTable, namedWeightsOf, weightArrays } from './layer-weights';

export interface WeightGradients {
  /** Per weight path: the analytic gradient of `sum(output())`, flattened. */
  gradients: Record<string, Float32Array>;
  /** Per weight path: largest absolute gradient entry. */
  gradientMax: Record<string, number>;
}

/**
 * Analytic gradients of `sum(output())` with respect to every trainable weight of `layer`, by path (all zeros for a
 * weight the output does not reach). No leaks.
 */
export function weightGradients(layer: tfl.layers.Layer, output: () => tf.Tensor): WeightGradients {
  const trainable = new Set(layer.trainableWeights);
  const weights = namedWeightsOf(layer).filter((w) => trainable.has(w.variable));
  const variables = weights.map((w) => w.variable.read() as tf.Variable);
  const { value, grads } = tf.variableGrads(() => tf.sum(output()) as tf.Scalar, variables);
  const gradients: Record<string, Float32Array> = {};
  const gradientMax: Record<string, number> = {};
  weights.forEach((w, k) => {
    const g = grads[variables[k]!.name];
    const values = g ? (g.dataSync().slice() as Float32Array) : new Float32Array(variables[k]!.size);
    gradients[w.path] = values;
    gradientMax[w.path] = values.reduce((m, v) => Math.max(m, Math.abs(v)), 0);
  });
  value.dispose();
  tf.dispose(Object.values(grads));
  return { gradients, gradientMax };
}

/** Reads or writes element `index` (row-major) of a nested array. */
function nestedElement(array: unknown, shape: readonly number[], index: number, value?: number): number {
  const position: number[] = [];
  let rest = index;
  for (let k = shape.length - 1; k >= 0; k--) {
    position.unshift(rest % shape[k]!);
    rest = Math.floor(rest / shape[k]!);
  }
  if (shape.length === 0) throw new Error('nestedElement: scalar weights are not supported');
  let node = array as unknown[];
  for (let k = 0; k < position.length - 1; k++) node = node[position[k]!] as unknown[];
  const last = position[position.length - 1]!;
  const old = node[last] as number;
  if (value !== undefined) node[last] = value;
  return old;
}

export interface ReferenceGradientCheckOptions {
  /** Seeded elements checked per trainable weight; default 4 (all when the weight is smaller). */
  perWeight?: number;
  /** Seed of the element choice; default 9. */
  seed?: number;
  /** Float64 central-difference step; default 1e-6. */
  eps?: number;
}

export interface ReferenceGradientResult {
  maxRelativeError: number;
  /** The worst element: `path[index]: numeric …, analytic …`. */
  worst: string;
  /** Number of elements compared. */
  checked: number;
}

/**
 * Checks tfjs' analytic weight gradients of `sum(output())` against float64 central differences (step 1e-6) of an
 * independent float64 implementation of the same loss, `referenceLoss(weights)`, for `perWeight` seeded elements
 * of every trainable weight. Float64 steps this small never cross a ReLU kink and carry no float32 rounding, so the
 * tolerance can be tight.
 *
 * @example
 * const probe = randomTensor([2, 4, 8], 7);
 * const { maxRelativeError } = referenceGradientCheck(layer, () => tf.mul(layer.forward(x), probe), (w) =>
 *   weightedSum(referenceForward(xArrays, w), probe.arraySync()),
 * );
 */
export function referenceGradientCheck(
  layer: tfl.layers.Layer,
  output: () => tf.Tensor,
  referenceLoss: (weights: WeightTable) => number,
  options: ReferenceGradientCheckOptions = {},
): ReferenceGradientResult {
  const { gradients } = weightGradients(layer, output);
  const values = weightArrays(layer);
  const shapes = Object.fromEntries(namedWeightsOf(layer).map((w) => [w.path, w.variable.shape as number[]]));
  const rng = new SeededRng(options.seed ?? 9);
  const eps = options.eps ?? 1e-6;
  let maxRelativeError = 0;
  let worst = '';
  let checked = 0;
  // Some gradients are exactly zero in exact arithmetic (e.g. key biases under softmax); float32 leaves ~1e-7 there.
  const globalScale = Object.values(gradients).reduce((m, g) => g.reduce((n, v) => Math.max(n, Math.abs(v)), m), 0);
  for (const [path, analytic] of Object.entries(gradients)) {
    const shape = shapes[path]!;
    const scale = analytic.reduce((m, v) => Math.max(m, Math.abs(v)), 0);
    const count = Math.min(options.perWeight ?? 4, analytic.length);
    const indices = rng.shuffle(Array.from({ length: analytic.length }, (_, i) => i)).slice(0, count);
    for (const index of indices) {
      const original = nestedElement(values[path], shape, index);
      nestedElement(values[path], shape, index, original + eps);
      const plus = referenceLoss(new WeightTable(values));
      nestedElement(values[path], shape, index, original - eps);
      const minus = referenceLoss(new WeightTable(values));
      nestedElement(values[path], shape, index, original);
      const numeric = (plus - minus) / (2 * eps);
      const exact = analytic[index]!;
      const relative = Math.abs(numeric - exact) / Math.max(Math.abs(numeric), Math.abs(exact), 1e-2 * scale, 1e-4 * globalScale, 1e-6);
      checked++;
      if (relative > maxRelativeError) {
        maxRelativeError = relative;
        worst = `${path}[${index}]: numeric ${numeric}, analytic ${exact}`;
      }
    }
  }
  return { maxRelativeError, worst, checked };
}

/** sum(output · weights) in float64 over nested arrays of any depth: the reference side of `sum(output * probe)`. */
export function weightedSum(output: unknown, weights: unknown): number {
  if (typeof output === 'number') return output * (weights as number);
  const list = output as unknown[];
  let sum = 0;
  for (let i = 0; i < list.length; i++) sum += weightedSum(list[i], (weights as unknown[])[i]);
  return sum;
}

export interface WeightGradientCheckOptions {
  /** Central-difference step; default 1e-3. */
  eps?: number;
  /** Seed of the chosen elements or directions; default 3. */
  seed?: number;
  /** 'elements' (default): move single entries; 'directions': move each weight along one random direction. */
  mode?: 'elements' | 'directions';
  /** Entries compared per weight in 'elements' mode; default 3. */
  elementsPerWeight?: number;
}

export interface WeightGradientCheckResult {
  maxRelativeError: number;
  /** Number of finite differences compared. */
  checked: number;
  /** How many differences were skipped because the step crossed a kink. */
  skippedAtKinks: number;
  /** Path of the weight with the largest error. */
  worstPath: string;
  /**
   * Paths of trainable weights whose gradient is missing or all zero. Attention key biases are left out: their
   * true gradient is zero (softmax is invariant to a shift shared by all keys), so rounding decides.
   */
  unreached: string[];
}

/** The sum of all values of `output()`, accumulated in float64 so that rounding does not swamp small changes. */
function sumInFloat64(output: () => tf.Tensor): number {
  const y = tf.tidy(output);
  const values = y.dataSync();
  y.dispose();
  let sum = 0;
  for (let k = 0; k < values.length; k++) sum += values[k]!;
  return sum;
}

/**
 * Float32 finite-difference check of the gradients of the loss `sum(output())` with respect to every trainable
 * weight of `layer`, when no float64 reference of the whole layer is at hand. In 'elements' mode (default) a few
 * seeded entries of each weight tensor with a non-zero gradient are moved one at a time; in 'directions' mode each
 * tensor in turn moves along a seeded random direction. Central differences with step `eps`; the loss is
 * accumulated in float64. Moving little at a time keeps ReLU kinks from being crossed, which otherwise dominates the
 * error of a whole-network check; element steps that still cross one are detected and skipped. The weights are
 * restored afterwards.
 *
 * @example
 * const probe = randomTensor([2, 5, 16], 4);
 * const result = checkWeightGradients(decoder, () => tf.mul(decoder.forward(memory, tokens).logits, probe));
 * expect(result.maxRelativeError).toBeLessThan(2e-2);
 * expect(result.unreached).toEqual([]);
 */
export function checkWeightGradients(
  layer: tfl.layers.Layer,
  output: () => tf.Tensor,
  options: WeightGradientCheckOptions = {},
): WeightGradientCheckResult {
  const eps = options.eps ?? 1e-3;
  const mode = options.mode ?? 'elements';
  const perWeight = options.elementsPerWeight ?? 3;
  const rng = new SeededRng(options.seed ?? 3);
  const weights = namedWeightsOf(layer).filter((w) => w.variable.trainable);
  const variables = weights.map((w) => w.variable.read() as tf.Variable);
  const { value, grads } = tf.variableGrads(() => tf.sum(output()) as tf.Scalar, variables);
  value.dispose();
  const gradients = variables.map((v) => (grads[v.name] ? (grads[v.name]!.dataSync().slice() as Float32Array) : null));
  tf.dispose(grads);
  const unreached = weights
    .filter((w, i) => !w.path.endsWith('key/bias') && (!gradients[i] || gradients[i]!.every((g) => g === 0)))
    .map((w) => w.path);
  const evaluate = (): number => sumInFloat64(output);
  const setValues = (v: tf.Variable, values: Float32Array) => {
    const t = tf.tensor(values, v.shape);
    v.assign(t);
    t.dispose();
  };
  const checks: { path: string; numeric: number; exact: number; scale: number }[] = [];
  let skippedAtKinks = 0;
  variables.forEach((v, i) => {
    const g = gradients[i];
    if (!g) return;
    const base = v.dataSync().slice() as Float32Array;
    const moves: Float32Array[] = [];
    if (mode === 'directions') {
      moves.push(Float32Array.from(base, () => eps * rng.normal()));
    } else {
      const candidates = Array.from(g.keys()).filter((k) => g[k] !== 0);
      // A few spare entries replace those whose step crosses a ReLU kink (see below).
      for (const k of rng.shuffle(candidates).slice(0, 3 * perWeight)) {
        const move = new Float32Array(base.length);
        move[k] = eps;
        moves.push(move);
      }
    }
    try {
      const center = mode === 'elements' ? evaluate() : 0;
      let accepted = 0;
      for (const move of moves) {
        if (mode === 'elements' && accepted === perWeight) break;
        setValues(v, base.map((x, k) => x + move[k]!));
        const plus = evaluate();
        setValues(v, base.map((x, k) => x - move[k]!));
        const minus = evaluate();
        // On a smooth function the second difference is O(eps^2) against the first's O(eps); a large one means the
        // step crossed a kink, where finite differences say nothing about the gradient.
        if (mode === 'elements' && Math.abs(plus - 2 * center + minus) > 0.2 * Math.abs(plus - minus) + 1e-7 * Math.abs(center)) {
          skippedAtKinks++;
          continue;
        }
        let exact = 0;
        let scale = 0;
        for (let k = 0; k < g.length; k++) {
          exact += 2 * g[k]! * move[k]!;
          scale += Math.abs(2 * g[k]! * move[k]!);
        }
        checks.push({ path: weights[i]!.path, numeric: plus - minus, exact, scale });
        accepted++;
      }
    } finally {
      setValues(v, base);
    }
  });
  // Weights whose true gradient is zero (attention key biases: softmax ignores a shift shared by all keys) have
  // only rounding noise on both sides; errors are therefore measured against 1% of the largest change too.
  const globalFloor = 1e-2 * Math.max(...checks.map((c) => Math.abs(c.exact)));
  let maxRelativeError = 0;
  let worstPath = '';
  for (const c of checks) {
    const error = Math.abs(c.numeric - c.exact) / Math.max(Math.abs(c.numeric), Math.abs(c.exact), 1e-2 * c.scale, globalFloor, 1e-30);
    if (error > maxRelativeError) {
      maxRelativeError = error;
      worstPath = c.path;
    }
  }
  return { maxRelativeError, worstPath, unreached, checked: checks.length, skippedAtKinks };
}
