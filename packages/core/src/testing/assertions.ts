import * as tf from '@tensorflow/tfjs-core';

export type NumericValues = tf.Tensor | readonly number[] | Float32Array | Float64Array | Int32Array;

export interface CloseTolerance {
  /** Absolute tolerance. */
  atol: number;
  /** Relative tolerance, times |expected|. */
  rtol: number;
}

function valuesOf(v: NumericValues): { values: ArrayLike<number>; shape?: number[] } {
  if (v instanceof tf.Tensor) return { values: v.dataSync() as ArrayLike<number>, shape: v.shape };
  return { values: v };
}

/**
 * Asserts `|actual − expected| ≤ atol + rtol·|expected|` element-wise (a number tolerance sets both).
 * The error names the worst element (index, both values, its error) and how many elements fail; shapes are
 * compared when both sides are tensors.
 */
export function expectClose(actual: NumericValues, expected: NumericValues, tolerance: number | CloseTolerance = 1e-5): void {
  const tol = typeof tolerance === 'number' ? { atol: tolerance, rtol: tolerance } : tolerance;
  const a = valuesOf(actual);
  const e = valuesOf(expected);
  if (a.shape !== undefined && e.shape !== undefined && a.shape.join(',') !== e.shape.join(',')) {
    throw new Error(`expectClose: shape [${a.shape.join(',')}] differs from expected [${e.shape.join(',')}]`);
  }
  if (a.values.length !== e.values.length) {
    throw new Error(`expectClose: ${a.values.length} values, expected ${e.values.length}`);
  }
  let failures = 0;
  let worstIndex = -1;
  let worstExcess = 0;
  let maxAbs = 0;
  for (let i = 0; i < a.values.length; i++) {
    const x = a.values[i]!;
    const y = e.values[i]!;
    const xNaN = Number.isNaN(x);
    const yNaN = Number.isNaN(y);
    // NaN matches only NaN and an infinity only the same infinity; any other mismatch with them is infinite.
    const same = x === y || (xNaN && yNaN);
    const diff = same ? 0 : xNaN || yNaN ? Infinity : Math.abs(x - y);
    if (diff > maxAbs) maxAbs = diff;
    const allowed = Number.isFinite(y) ? tol.atol + tol.rtol * Math.abs(y) : 0;
    const excess = diff - allowed;
    if (excess > 0) {
      failures++;
      if (worstIndex < 0 || excess > worstExcess) {
        worstIndex = i;
        worstExcess = excess;
      }
    }
  }
  if (failures > 0) {
    const x = a.values[worstIndex]!;
    const y = e.values[worstIndex]!;
    throw new Error(
      `expectClose: ${failures} of ${a.values.length} values differ (atol ${tol.atol}, rtol ${tol.rtol}); ` +
        `max abs error ${maxAbs.toExponential(3)}; worst at index ${worstIndex}: actual ${x}, expected ${y}`,
    );
  }
}

/**
 * Asserts that `fn` leaves `tf.memory().numTensors` unchanged (sync or async). Returns `fn`'s result, which must not
 * be a tensor (that would count as a leak).
 */
export function expectNoLeaks<T>(fn: () => Promise<T>): Promise<T>;
export function expectNoLeaks<T>(fn: () => T): T;
export function expectNoLeaks<T>(fn: () => T | Promise<T>): T | Promise<T> {
  const before = tf.memory().numTensors;
  const check = (result: T): T => {
    const after = tf.memory().numTensors;
    if (after !== before) {
      throw new Error(`expectNoLeaks: ${after - before} tensor(s) leaked (numTensors ${before} before, ${after} after)`);
    }
    return result;
  };
  const result = fn();
  if (result instanceof Promise) return result.then(check);
  return check(result);
}
