/** Test-only helpers shared by the encoder's test files. */
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import * as tf from '@tensorflow/tfjs-core';
import { SeededRng, S2Layer } from '@s2cpnet/core';

/**
 * Gives every weight of a layer tree seeded random values of a realistic kind: kernels ~ N(0, 0.3^2) scaled by
 * fan-in, gamma in [0.5, 1.5], beta ~ N(0, 0.1^2), moving mean ~ N(0, 0.2^2), moving variance in [0.5, 1.5]
 * (non-trivial BN statistics, so folding them into the conv is really tested).
 */
export function randomizeWeights(layer: S2Layer, seed: number): void {
  const rng = new SeededRng(seed);
  for (const { path, variable } of layer.namedWeights()) {
    const shape = variable.shape as number[];
    const size = shape.reduce((a, b) => a * b, 1);
    const values = new Float32Array(size);
    const leaf = path.split('/').pop()!;
    const fanIn = shape.length === 4 ? shape[0]! * shape[1]! * (shape[3] === 1 ? 1 : shape[2]!) : shape[0]!;
    for (let i = 0; i < size; i++) {
      if (leaf === 'gamma' || leaf === 'moving_variance') values[i] = rng.uniform(0.5, 1.5);
      else if (leaf === 'beta') values[i] = 0.1 * rng.normal();
      else if (leaf === 'moving_mean') values[i] = 0.2 * rng.normal();
      else if (leaf === 'bias') values[i] = 0.1 * rng.normal();
      else values[i] = rng.normal() * Math.sqrt(2 / Math.max(fanIn, 1));
    }
    const t = tf.tensor(values, shape);
    variable.write(t);
    t.dispose();
  }
}

/** A seeded random tensor with values ~ N(0, scale^2). */
export function seededTensor(shape: number[], seed: number, scale = 1): tf.Tensor {
  const rng = new SeededRng(seed);
  const size = shape.reduce((a, b) => a * b, 1);
  return tf.tensor(Float32Array.from({ length: size }, () => scale * rng.normal()), shape);
}

/** Path -> values of every weight (to compare weights or copy them by path). */
export function weightValues(layer: S2Layer): Map<string, Float32Array> {
  return new Map(layer.namedWeights().map(({ path, variable }) => [path, variable.read().dataSync().slice() as Float32Array]));
}

/** Writes weights by path; every path of the target must be present. */
export function writeWeightValues(layer: S2Layer, values: ReadonlyMap<string, Float32Array>): void {
  for (const { path, variable } of layer.namedWeights()) {
    const v = values.get(path);
    if (!v) throw new Error(`no value for weight path '${path}'`);
    const t = tf.tensor(v, variable.shape as number[]);
    variable.write(t);
    t.dispose();
  }
}

/** The folder holding this package's test fixtures. */
export const FIXTURES = join(dirname(fileURLToPath(import.meta.url)), 'fixtures');

/**
 * A path in the project's shared folder (weights, data), found by the repository's one helper: `undefined` when
 * absent outside CI (tests that need it are skipped), an error in CI.
 */
export { sharedPath } from '../../../../scripts/shared-dir';

/**
 * Finite-difference check of the gradients of `output()` with respect to layer variables: loss = Σ output·R with a
 * fixed random R, accumulated in float64 in JS for the numeric side; analytic side from `tf.variableGrads`. Moves all
 * variables at once along `directions` seeded random directions and returns the largest relative error
 * |numeric − analytic| / max(|numeric|, |analytic|, 1e-3·Σ|g·v|).
 */
export function weightGradientCheck(
  output: () => tf.Tensor,
  variables: readonly { read(): tf.Tensor; write(v: tf.Tensor): unknown; shape: readonly (number | null)[] }[],
  options: { eps?: number; directions?: number; seed?: number } = {},
): number {
  const eps = options.eps ?? 1e-2;
  const rng = new SeededRng(options.seed ?? 1);
  const probe = tf.tidy(() => output());
  const r = Float32Array.from({ length: probe.size }, () => rng.normal());
  const rTensor = tf.tensor(r, probe.shape);
  probe.dispose();
  const originals = variables.map((v) => v.read().dataSync().slice() as Float32Array);
  const lossJs = (): number => {
    const y = tf.tidy(() => output());
    const values = y.dataSync();
    y.dispose();
    let sum = 0;
    for (let i = 0; i < values.length; i++) sum += values[i]! * r[i]!;
    return sum;
  };
  const set = (values: Float32Array[]) =>
    variables.forEach((v, i) => {
      const t = tf.tensor(values[i]!, v.shape as number[]);
      v.write(t);
      t.dispose();
    });
  const { value, grads } = tf.variableGrads(() => tf.sum(tf.mul(output(), rTensor)) as tf.Scalar, variables.map((v) => v.read() as tf.Variable));
  const gradients = variables.map((v) => grads[(v.read() as tf.Variable).name]!.dataSync().slice() as Float32Array);
  value.dispose();
  tf.dispose(grads);
  let worst = 0;
  try {
    for (let d = 0; d < (options.directions ?? 3); d++) {
      const direction = originals.map((o) => Float32Array.from({ length: o.length }, () => rng.normal()));
      let analytic = 0;
      let scale = 0;
      direction.forEach((dir, i) =>
        dir.forEach((x, j) => {
          analytic += gradients[i]![j]! * x;
          scale += Math.abs(gradients[i]![j]! * x);
        }),
      );
      set(originals.map((o, i) => o.map((x, j) => x + eps * direction[i]![j]!)));
      const plus = lossJs();
      set(originals.map((o, i) => o.map((x, j) => x - eps * direction[i]![j]!)));
      const minus = lossJs();
      set(originals);
      const numeric = (plus - minus) / (2 * eps);
      worst = Math.max(worst, Math.abs(numeric - analytic) / Math.max(Math.abs(numeric), Math.abs(analytic), 1e-3 * scale));
    }
  } finally {
    set(originals);
    rTensor.dispose();
  }
  return worst;
}
