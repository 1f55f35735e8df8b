/**
 * Ops whose forward and gradient are correct and fast on every backend, for model code to use in place of ops
 * with known gradient bugs.
 */
import * as tf from '@tensorflow/tfjs-core';
import { ShapeError } from '../errors';

function factorPair(factor: number | readonly [number, number]): [number, number] {
  const pair: [number, number] = typeof factor === 'number' ? [factor, factor] : [factor[0], factor[1]];
  for (const f of pair) {
    if (!Number.isInteger(f) || f < 1) {
      throw new RangeError(`upsampleNearest: factor must be a positive integer or a pair of them, found ${JSON.stringify(factor)}`);
    }
  }
  return pair;
}

/**
 * Nearest-neighbour upsampling of an NHWC tensor by integer factors, as reshape + broadcast + reshape.
 *
 * Same values as `tf.image.resizeNearestNeighbor(x, [h·f, w·f])` (no alignCorners, no halfPixelCenters), but its
 * gradient is a plain sum over the copies, so it needs no resize-gradient kernel.
 *
 * @example
 * const y = upsampleNearest(x, 2); // [b, h, w, c] -> [b, 2h, 2w, c]
 */
export function upsampleNearest(x: tf.Tensor4D, factor: number | readonly [number, number]): tf.Tensor4D {
  if (x.rank !== 4) throw new ShapeError('upsampleNearest', 'x', `must be rank 4 (NHWC), found shape [${x.shape.join(',')}]`);
  const [fh, fw] = factorPair(factor);
  const [b, h, w, c] = x.shape;
  if (fh === 1 && fw === 1) return tf.clone(x);
  return tf.tidy(() => {
    const spread = tf.reshape(x, [b, h, 1, w, 1, c]);
    // A broadcast multiply, not tf.tile: tfjs has no Tile gradient for rank 6, while Multiply's gradient sums any rank.
    const copies = tf.mul(spread, tf.ones([1, 1, fh, 1, fw, 1]));
    return tf.reshape(copies, [b, h * fh, w * fw, c]) as tf.Tensor4D;
  });
}

/**
 * `a · b` with optional transposes done as explicit `tf.transpose` calls (never the kernel's transpose flags, which
 * are 10–40× slower on wasm), for code that runs before `registerS2CPNetKernels()` or on backends without the
 * wrapper.
 *
 * @example
 * const scores = matMulExplicit(q, k, false, true); // q·kᵀ for attention, [b, h, t, d]·[b, h, s, d]ᵀ
 */
export function matMulExplicit(a: tf.Tensor, b: tf.Tensor, transposeA = false, transposeB = false): tf.Tensor {
  return tf.tidy(() => {
    const swap = (t: tf.Tensor) => {
      const perm = Array.from({ length: t.rank }, (_, i) => i);
      perm[t.rank - 2] = t.rank - 1;
      perm[t.rank - 1] = t.rank - 2;
      return tf.transpose(t, perm);
    };
    return tf.matMul(transposeA ? swap(a) : a, transposeB ? swap(b) : b);
  });
}
