/**
 * Documents the stock tfjs 4.22 bugs the S²CPNet kernels exist for: each test shows the stock behaviour on a small
 * deterministic case, then the corrected one. If a tfjs upgrade fixes a bug, its test fails here and the patch can go.
 */
import * as tf from '@tensorflow/tfjs-core';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { expectClose, randomTensor, testBackends, useBackend } from '../testing/index';
import { registerS2CPNetKernels, restoreStockKernels } from './index';

/** Runs `fn` with tfjs' stock kernels and gradients, then reinstalls ours. */
function withStock<T>(fn: () => T): T {
  restoreStockKernels();
  try {
    return fn();
  } finally {
    registerS2CPNetKernels();
  }
}

function gradient(f: (x: tf.Tensor) => tf.Tensor, x: tf.Tensor): Float32Array {
  return tf.tidy(() => tf.grad((t: tf.Tensor) => tf.sum(f(t)))(x).dataSync().slice() as Float32Array);
}

function maxRelativeDifference(a: Float32Array, b: Float32Array): number {
  let diff = 0;
  let scale = 0;
  for (let i = 0; i < a.length; i++) {
    diff = Math.max(diff, Math.abs(a[i]! - b[i]!));
    scale = Math.max(scale, Math.abs(b[i]!));
  }
  return diff / scale;
}

const backends = testBackends();

for (const backend of backends) {
  describe(`stock tfjs gradient bugs on ${backend}`, () => {
    beforeAll(async () => {
      await useBackend(backend);
    });
    afterAll(() => {
      registerS2CPNetKernels();
    });

    it("avgPool 'same': stock divides border windows by the full area; ours by the real cell count", () => {
      const x = tf.ones([1, 3, 3, 1]);
      const f = (t: tf.Tensor) => tf.avgPool(t as tf.Tensor4D, 3, 1, 'same');
      const stock = withStock(() => gradient(f, x));
      const ours = gradient(f, x);
      // Corner: windows of 4, 6, 6 and 9 real cells contain it.
      expect(stock[0]).toBeCloseTo(4 / 9, 5);
      expect(ours[0]).toBeCloseTo(1 / 4 + 1 / 6 + 1 / 6 + 1 / 9, 5);
      x.dispose();
    });

    it('resizeBilinear halfPixelCenters: the stock gradient ignores the flag', () => {
      const x = randomTensor([1, 4, 4, 1], 1);
      const r = randomTensor([1, 8, 8, 1], 2);
      const f = (t: tf.Tensor) => tf.mul(tf.image.resizeBilinear(t as tf.Tensor4D, [8, 8], false, true), r);
      const stock = withStock(() => gradient(f, x));
      const ours = gradient(f, x);
      expect(maxRelativeDifference(stock, ours)).toBeGreaterThan(0.1);
      tf.dispose([x, r]);
    });

    it('resizeNearestNeighbor halfPixelCenters at a non-integer scale: the stock gradient is wrong', () => {
      const x = randomTensor([1, 5, 4, 1], 13);
      const r = randomTensor([1, 7, 9, 1], 14);
      const f = (t: tf.Tensor) => tf.mul(tf.image.resizeNearestNeighbor(t as tf.Tensor4D, [7, 9], false, true), r);
      const stock = withStock(() => gradient(f, x));
      const ours = gradient(f, x);
      // Nearest-neighbour resizing is linear in x with 0/1 weights, so the gradient sums r over the cells each
      // input cell was copied to; recompute that from the forward pass of a one-hot input.
      const expected = new Float32Array(20);
      for (let i = 0; i < 20; i++) {
        expected[i] = tf.tidy(() => {
          const oneHot = tf.reshape(tf.oneHot(tf.tensor1d([i], 'int32'), 20), [1, 5, 4, 1]);
          return tf.sum(f(oneHot)).dataSync()[0]!;
        });
      }
      expectClose(ours, expected, 1e-5);
      expect(maxRelativeDifference(stock, expected)).toBeGreaterThan(0.1);
      tf.dispose([x, r]);
    });

    it('matMul with broadcast batch dimensions: the stock gradient has the wrong shape', () => {
      const a = randomTensor([2, 3, 4], 4);
      const b = randomTensor([4, 5], 5);
      const f = (t: tf.Tensor) => tf.matMul(a, t);
      expect(() => withStock(() => gradient(f, b))).toThrow(/does not match the shape of the input/);
      expect(gradient(f, b).length).toBe(20);
      tf.dispose([a, b]);
    });

    it('matMul [2,1,m,k]·[1,3,k,n]: the stock forward pass broadcasts wrongly', () => {
      const a = randomTensor([2, 1, 3, 4], 6);
      const b = randomTensor([1, 3, 4, 2], 7);
      const reference = tf.matMul(tf.tile(a, [1, 3, 1, 1]), tf.tile(b, [2, 1, 1, 1]));
      const stock = withStock(() => tf.matMul(a, b));
      // Stock computes max(2, 3) = 3 batches instead of 6 (fewer values than its shape claims) or wrong ones.
      expect(() => expectClose(stock, reference, 1e-4)).toThrow(/expectClose/);
      const ours = tf.matMul(a, b);
      expectClose(ours, reference, 1e-5);
      tf.dispose([a, b, reference, stock, ours]);
    });

    if (backend === 'cpu') {
      it('resizeBilinear with height ≠ width: the stock cpu gradient has height and width swapped', () => {
        const x = randomTensor([1, 5, 4, 1], 3);
        const f = (t: tf.Tensor) => tf.image.resizeBilinear(t as tf.Tensor4D, [9, 7]);
        expect(() => withStock(() => gradient(f, x))).toThrow(/does not match the shape of the input/);
        expect(gradient(f, x).length).toBe(20);
        x.dispose();
      });

      it('resizeNearestNeighbor with batch > 1: the stock cpu gradient is wrong', () => {
        const x = randomTensor([2, 3, 3, 1], 8);
        const r = randomTensor([2, 6, 6, 1], 9);
        const f = (t: tf.Tensor) => tf.mul(tf.image.resizeNearestNeighbor(t as tf.Tensor4D, [6, 6]), r);
        const stock = withStock(() => gradient(f, x));
        const ours = gradient(f, x);
        // Each input cell of a ×2 upsampling receives exactly its 2×2 block of r.
        const rv = r.dataSync();
        const expected = new Float32Array(18);
        for (let b = 0; b < 2; b++)
          for (let y = 0; y < 6; y++) for (let z = 0; z < 6; z++) expected[b * 9 + Math.floor(y / 2) * 3 + Math.floor(z / 2)] += rv[b * 36 + y * 6 + z]!;
        expectClose(ours, expected, 1e-5);
        expect(maxRelativeDifference(stock, expected)).toBeGreaterThan(0.1);
        tf.dispose([x, r]);
      });
    }

    if (backend === 'wasm') {
      it('maxPool on wasm: the stock gradient is wrong when a window is all negative', () => {
        const x = tf.tensor4d([-5, -1, -3, -2, -4, -6, -7, -8, -9, -10, -11, -12, -13, -14, -15, -16], [1, 4, 4, 1]);
        const f = (t: tf.Tensor) => tf.maxPool(t as tf.Tensor4D, 2, 2, 'valid');
        const stock = withStock(() => gradient(f, x));
        const ours = gradient(f, x);
        // The maxima of the four 2×2 windows are -1, -2, -9 and -11 (flat indices 1, 3, 8 and 10).
        const expected = new Float32Array(16);
        for (const i of [1, 3, 8, 10]) expected[i] = 1;
        expectClose(ours, expected, 0);
        expect(Array.from(stock)).not.toEqual(Array.from(expected));
        x.dispose();
      });

      it('wasm lacks the kernels conv2d, depthwiseConv2d and gather gradients need', () => {
        const x = randomTensor([1, 4, 4, 2], 10);
        const w = randomTensor([3, 3, 2, 2], 11);
        const table = randomTensor([5, 3], 12);
        const ids = tf.tensor1d([0, 4, 4], 'int32');
        withStock(() => {
          expect(() => gradient((t) => tf.conv2d(x as tf.Tensor4D, t as tf.Tensor4D, 1, 'same'), w)).toThrow(/Conv2DBackpropFilter/);
          expect(() => gradient((t) => tf.depthwiseConv2d(t as tf.Tensor4D, w as tf.Tensor4D, 1, 'same'), x)).toThrow(
            /DepthwiseConv2dNativeBackpropInput/,
          );
          expect(() => gradient((t) => tf.gather(t, ids), table)).toThrow(/UnsortedSegmentSum/);
        });
        expect(gradient((t) => tf.conv2d(x as tf.Tensor4D, t as tf.Tensor4D, 1, 'same'), w).length).toBe(36);
        expect(Array.from(gradient((t) => tf.gather(t, ids), table))).toEqual([1, 1, 1, 0, 0, 0, 0, 0, 0, 0, 0, 0, 2, 2, 2]);
        tf.dispose([x, w, table, ids]);
      });
    }
  });
}
