/** Test-only helpers shared by this package's tests. Not exported from the package. */
import * as tf from '@tensorflow/tfjs-core';
import { SeededRng, type S2Layer } from '@s2cpnet/core';

/** Int32 tokens [rows, length] drawn uniformly from `low..vocab-1` (default low 1: no `<pad>`). */
export function randomTokens(rows: number, length: number, vocab: number, seed: number, low = 1): tf.Tensor2D {
  const rng = new SeededRng(seed);
  const values = Int32Array.from({ length: rows * length }, () => low + rng.int(vocab - low));
  return tf.tensor2d(values, [rows, length], 'int32');
}

/**
 * Adds seeded noise of standard deviation `scale` to every weight, so tests exercise biases and layer-norm
 * parameters that start at exactly 0 and 1. Keep `scale` small in gradient checks: large random weights make the
 * function so curved (and ReLU kinks so close) that float32 finite differences stop being informative.
 */
export function randomizeWeights(layer: S2Layer, seed: number, scale = 0.3): void {
  const rng = new SeededRng(seed);
  for (const { variable } of layer.namedWeights()) {
    const size = variable.shape.reduce((a: number, b) => a * (b ?? 1), 1);
    const current = variable.read().dataSync();
    const values = Float32Array.from({ length: size }, (_, i) => current[i]! + scale * rng.normal());
    const t = tf.tensor(values, variable.shape as number[]);
    variable.write(t);
    t.dispose();
  }
}

/** Copies weights from `source` into `target` by `namedWeights()` path; throws when the path sets differ. */
export function copyWeightsByPath(source: S2Layer, target: S2Layer): void {
  const from = new Map(source.namedWeights().map((w) => [w.path, w.variable]));
  const to = target.namedWeights();
  const missing = to.filter((w) => !from.has(w.path)).map((w) => w.path);
  if (missing.length > 0 || to.length !== from.size) {
    throw new Error(`copyWeightsByPath: path sets differ (${to.length} vs ${from.size}; missing ${missing.join(', ')})`);
  }
  for (const { path, variable } of to) variable.write(from.get(path)!.read());
}

export interface WeightGradientResult {
  maxRelativeError: number;
  /** Number of finite differences compared, and how many were skipped because the step crossed a kink. */
  checked: number;
  skippedAtKinks: number;
  /** Path of the weight with the largest error. */
  worstPath: string;
  /**
   * Paths of trainable weights whose gradient is missing or all zero. Attention key biases are left out: their
   * true gradient is zero (softmax is invariant to a shift shared by all keys), so rounding decides.
   */
  unreached: string[];
}

/**
 * Finite-difference check of the gradients of the loss `sum(output())` with respect to every trainable weight of
 * `layer`. In 'elements' mode (default) a few seeded entries of each weight tensor with a non-zero gradient are
 * moved one at a time; in 'directions' mode each tensor in turn moves along a seeded random direction. Central
 * differences with step `eps`; the loss is accumulated in float64. Moving little at a time keeps the ReLU kinks of
 * the feed-forward blocks from being crossed, which otherwise dominates the error of a whole-decoder check.
 * The weights are restored afterwards.
 */
export function checkWeightGradients(
  layer: S2Layer,
  output: () => tf.Tensor,
  options: { eps?: number; seed?: number; mode?: 'elements' | 'directions'; elementsPerWeight?: number } = {},
): WeightGradientResult {
  const eps = options.eps ?? 1e-3;
  const mode = options.mode ?? 'elements';
  const perWeight = options.elementsPerWeight ?? 3;
  const rng = new SeededRng(options.seed ?? 3);
  const weights = layer.namedWeights().filter((w) => w.variable.trainable);
  const variables = weights.map((w) => w.variable.read() as tf.Variable);
  const { value, grads } = tf.variableGrads(() => tf.sum(output()) as tf.Scalar, variables);
  value.dispose();
  const gradients = variables.map((v) => (grads[v.name] ? (grads[v.name]!.dataSync().slice() as Float32Array) : null));
  tf.dispose(grads);
  const unreached = weights
    .filter((w, i) => !w.path.endsWith('key/bias') && (!gradients[i] || gradients[i]!.every((g) => g === 0)))
    .map((w) => w.path);
  const evaluate = (): number => {
    // The loss is the sum of the outputs, accumulated in float64 so that rounding does not swamp small changes.
    const y = tf.tidy(output);
    const values = y.dataSync();
    y.dispose();
    let sum = 0;
    for (let k = 0; k < values.length; k++) sum += values[k]!;
    return sum;
  };
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
  if (process.env.DEBUG_GRADS) console.log(checks.filter((c) => c.path === worstPath));
  return { maxRelativeError, worstPath, unreached, checked: checks.length, skippedAtKinks };
}

/** Rows of a [B, ...] float tensor as nested number arrays of the trailing two axes. */
export function matrices(t: tf.Tensor): number[][][] {
  return t.arraySync() as number[][][];
}
