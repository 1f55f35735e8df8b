import * as tf from '@tensorflow/tfjs-core';
import { SeededRng } from '../rng';

export interface GradientCheckOptions {
  /**
   * 'directions' (default): compare directional derivatives along seeded random directions (all inputs at once);
   * 'elements': compare single gradient entries (sampled, see `maxElements`); 'both'.
   */
  mode?: 'directions' | 'elements' | 'both';
  /** Number of random directions; default 3. */
  directions?: number;
  /** Seed of the directions and of the sampled elements; default 1. */
  seed?: number;
  /** Finite-difference step; default by dtype (float32: 1e-2). */
  eps?: number;
  /** Elements checked per input in 'elements' mode; default 24 (all when the input is smaller). */
  maxElements?: number;
  /** Indices of the inputs to differentiate; default every float32 input. */
  wrt?: number[];
  /**
   * Errors are relative to max(|numeric|, |analytic|, relativeFloor · scale), where scale is Σ|gᵢ·vᵢ| for a direction
   * and max|g| of the input for an element, so tiny derivatives made of large cancelling terms are not over-weighted.
   * Default 1e-3.
   */
  relativeFloor?: number;
}

export interface GradientCheckDetail {
  kind: 'direction' | 'element';
  /** Input index (elements) or -1 (a direction moves every checked input). */
  input: number;
  /** Direction number or flat element index. */
  index: number;
  numeric: number;
  analytic: number;
  relativeError: number;
}

export interface GradientCheckResult {
  maxRelativeError: number;
  details: GradientCheckDetail[];
}

/** Default finite-difference step per dtype: large enough that float32 rounding of the loss is negligible. */
const DEFAULT_EPSILON: Record<string, number> = { float32: 1e-2 };

type Values = Float32Array | Int32Array | Uint8Array;

/**
 * The check as a generator: it yields each tensor whose values it needs and is resumed with them (the driver reads
 * synchronously, or with `await data()` on backends without synchronous reads). It disposes what it yields.
 */
function* gradientCheckSteps(
  f: (...inputs: tf.Tensor[]) => tf.Tensor,
  inputs: tf.Tensor[],
  options: GradientCheckOptions,
): Generator<tf.Tensor, GradientCheckResult, Values> {
  const mode = options.mode ?? 'directions';
  const rng = new SeededRng(options.seed ?? 1);
  const floorFactor = options.relativeFloor ?? 1e-3;
  const wrt = options.wrt ?? inputs.flatMap((t, i) => (t.dtype === 'float32' ? [i] : []));
  if (wrt.length === 0) throw new Error('gradientCheck: no float32 input to differentiate');
  for (const i of wrt) {
    const t = inputs[i];
    if (t === undefined) throw new Error(`gradientCheck: wrt index ${i} is out of range (${inputs.length} inputs)`);
    if (t.dtype !== 'float32') throw new Error(`gradientCheck: input ${i} has dtype ${t.dtype}; only float32 inputs can be checked`);
  }
  const eps = options.eps ?? DEFAULT_EPSILON['float32']!;
  const base: Values[] = [];
  for (const t of inputs) base.push((yield tf.clone(t)).slice());

  /** Yields f at the replaced inputs; the loss is the float64 sum of what the driver reads back. */
  function* lossAt(replaced: Map<number, Float32Array>): Generator<tf.Tensor, number, Values> {
    const tensors = inputs.map((t, i) => {
      const values = replaced.get(i);
      return values === undefined ? t : tf.tensor(values, t.shape, 'float32');
    });
    let out: tf.Tensor;
    try {
      out = tf.tidy(() => f(...tensors));
    } finally {
      tensors.forEach((t, i) => {
        if (replaced.has(i)) t.dispose();
      });
    }
    const values = yield out;
    let sum = 0;
    for (let k = 0; k < values.length; k++) sum += values[k]!;
    return sum;
  }

  const analytic = tf.tidy(() => {
    const gradFn = tf.grads((...xs: tf.Tensor[]) => {
      const all = inputs.slice();
      wrt.forEach((inputIndex, k) => (all[inputIndex] = xs[k]!));
      return tf.sum(f(...all));
    });
    return gradFn(wrt.map((i) => inputs[i]!));
  });
  const gradients: Float32Array[] = [];
  for (const g of analytic) gradients.push((yield g).slice() as Float32Array);

  const details: GradientCheckDetail[] = [];
  const relative = (numeric: number, exact: number, scale: number) => {
    const denominator = Math.max(Math.abs(numeric), Math.abs(exact), floorFactor * scale, 1e-30);
    return Math.abs(numeric - exact) / denominator;
  };

  if (mode === 'directions' || mode === 'both') {
    const count = options.directions ?? 3;
    for (let d = 0; d < count; d++) {
      const plus = new Map<number, Float32Array>();
      const minus = new Map<number, Float32Array>();
      let exact = 0;
      let scale = 0;
      wrt.forEach((inputIndex, k) => {
        const x = base[inputIndex] as Float32Array;
        const p = new Float32Array(x.length);
        const m = new Float32Array(x.length);
        for (let i = 0; i < x.length; i++) {
          const step = eps * rng.normal();
          p[i] = x[i]! + step;
          m[i] = x[i]! - step;
          const term = gradients[k]![i]! * (p[i]! - m[i]!);
          exact += term;
          scale += Math.abs(term);
        }
        plus.set(inputIndex, p);
        minus.set(inputIndex, m);
      });
      const numeric = (yield* lossAt(plus)) - (yield* lossAt(minus));
      const norm = 2 * eps;
      details.push({
        kind: 'direction',
        input: -1,
        index: d,
        numeric: numeric / norm,
        analytic: exact / norm,
        relativeError: relative(numeric, exact, scale),
      });
    }
  }

  if (mode === 'elements' || mode === 'both') {
    const maxElements = options.maxElements ?? 24;
    for (const [k, inputIndex] of wrt.entries()) {
      const x = base[inputIndex] as Float32Array;
      const g = gradients[k]!;
      let gMax = 0;
      for (let i = 0; i < g.length; i++) gMax = Math.max(gMax, Math.abs(g[i]!));
      const indices =
        x.length <= maxElements
          ? Array.from({ length: x.length }, (_, i) => i)
          : rng.shuffle(Array.from({ length: x.length }, (_, i) => i)).slice(0, maxElements).sort((a, b) => a - b);
      for (const i of indices) {
        const p = x.slice();
        const m = x.slice();
        p[i] = x[i]! + eps;
        m[i] = x[i]! - eps;
        const numeric = ((yield* lossAt(new Map([[inputIndex, p]]))) - (yield* lossAt(new Map([[inputIndex, m]])))) / (p[i]! - m[i]!);
        details.push({
          kind: 'element',
          input: inputIndex,
          index: i,
          numeric,
          analytic: g[i]!,
          relativeError: relative(numeric, g[i]!, gMax),
        });
      }
    }
  }

  const maxRelativeError = details.reduce((worst, d) => Math.max(worst, d.relativeError), 0);
  return { maxRelativeError, details };
}

/**
 * Finite-difference check of `tf.grads` for `f`. The loss is the sum of all values of `f(...inputs)`, accumulated in
 * float64 on the JS side (so `f` may return any tensor, e.g. `op(x) * R`); central differences use the actually
 * representable perturbed float32 inputs. Inputs are not modified; no tensor is leaked. Reads synchronously: on
 * webgpu use `gradientCheckAsync`.
 *
 * @example
 * const r = randomTensor([2, 4, 4, 3], 7);
 * const { maxRelativeError } = gradientCheck((x) => tf.mul(tf.relu(x), r), [x]);
 */
export function gradientCheck(f: (...inputs: tf.Tensor[]) => tf.Tensor, inputs: tf.Tensor[], options: GradientCheckOptions = {}): GradientCheckResult {
  const steps = gradientCheckSteps(f, inputs, options);
  let next = steps.next(undefined as never);
  while (!next.done) {
    const tensor = next.value;
    let values: Values;
    try {
      values = tensor.dataSync() as Values;
    } finally {
      tensor.dispose();
    }
    next = steps.next(values);
  }
  return next.value;
}

/** `gradientCheck` reading with `await data()`: the form for backends without synchronous reads (webgpu). */
export async function gradientCheckAsync(f: (...inputs: tf.Tensor[]) => tf.Tensor, inputs: tf.Tensor[], options: GradientCheckOptions = {}): Promise<GradientCheckResult> {
  const steps = gradientCheckSteps(f, inputs, options);
  let next = steps.next(undefined as never);
  while (!next.done) {
    const tensor = next.value;
    let values: Values;
    try {
      values = (await tensor.data()) as Values;
    } finally {
      tensor.dispose();
    }
    next = steps.next(values);
  }
  return next.value;
}

export interface ExpectGradientsOptions extends GradientCheckOptions {
  /** Largest accepted relative error; default 1e-2. */
  tolerance?: number;
  /** Name used in the error message. */
  label?: string;
}

/** Runs `gradientCheck` and throws a readable error listing the worst mismatches when it exceeds `tolerance`. */
export function expectGradientsMatch(
  f: (...inputs: tf.Tensor[]) => tf.Tensor,
  inputs: tf.Tensor[],
  options: ExpectGradientsOptions = {},
): GradientCheckResult {
  return checkTolerance(gradientCheck(f, inputs, options), options);
}

/** `expectGradientsMatch` over `gradientCheckAsync` (webgpu). */
export async function expectGradientsMatchAsync(
  f: (...inputs: tf.Tensor[]) => tf.Tensor,
  inputs: tf.Tensor[],
  options: ExpectGradientsOptions = {},
): Promise<GradientCheckResult> {
  return checkTolerance(await gradientCheckAsync(f, inputs, options), options);
}

function checkTolerance(result: GradientCheckResult, options: ExpectGradientsOptions): GradientCheckResult {
  const tolerance = options.tolerance ?? 1e-2;
  if (!(result.maxRelativeError <= tolerance)) {
    const worst = [...result.details].sort((a, b) => b.relativeError - a.relativeError).slice(0, 5);
    const lines = worst.map((d) => {
      const where = d.kind === 'direction' ? `direction ${d.index}` : `input ${d.input} element ${d.index}`;
      return `  ${where}: numeric ${d.numeric.toPrecision(6)}, analytic ${d.analytic.toPrecision(6)}, relative error ${d.relativeError.toExponential(2)}`;
    });
    throw new Error(
      `${options.label ?? 'gradient'}: analytic gradient differs from finite differences on ${tf.getBackend()} ` +
        `(max relative error ${result.maxRelativeError.toExponential(2)} > ${tolerance}):\n${lines.join('\n')}`,
    );
  }
  return result;
}
