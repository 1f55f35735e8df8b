import * as tf from '@tensorflow/tfjs-core';
import { afterEach, beforeAll, describe, expect, it } from 'vitest';
import {
  distinctTensor,
  expectClose,
  expectGradientsMatch,
  expectNoLeaks,
  gradientCheck,
  lastKernelReport,
  randomTensor,
  testBackends,
  useBackend,
} from './index';

/** x ↦ x² with a deliberately wrong gradient (3x instead of 2x), to prove the checker catches it. */
const squareWithWrongGradient = tf.customGrad((...args) => {
  const x = args[0] as tf.Tensor;
  return { value: tf.square(x), gradFunc: (dy: tf.Tensor) => tf.mul(dy, tf.mul(x, 3)) };
}) as (x: tf.Tensor) => tf.Tensor;

describe('testBackends', () => {
  const original = process.env['S2CPNET_TEST_BACKENDS'];
  afterEach(() => {
    if (original === undefined) delete process.env['S2CPNET_TEST_BACKENDS'];
    else process.env['S2CPNET_TEST_BACKENDS'] = original;
  });

  it('defaults to cpu and wasm (webgpu is opt-in), reads the environment, and rejects unknown names', () => {
    delete process.env['S2CPNET_TEST_BACKENDS'];
    expect(testBackends()).toEqual(['cpu', 'wasm']);
    process.env['S2CPNET_TEST_BACKENDS'] = ' wasm ';
    expect(testBackends()).toEqual(['wasm']);
    process.env['S2CPNET_TEST_BACKENDS'] = 'cpu,webgpu';
    expect(testBackends()).toEqual(['cpu', 'webgpu']);
    process.env['S2CPNET_TEST_BACKENDS'] = 'cpu,metal';
    expect(() => testBackends()).toThrow(/unknown backend 'metal'/);
  });
});

for (const backend of testBackends()) {
  describe(`test helpers on ${backend}`, () => {
    beforeAll(async () => {
      await useBackend(backend);
    });

    it('useBackend makes the backend current, silences tfjs and installs the kernels', () => {
      expect(tf.getBackend()).toBe(backend);
      expect(tf.env().getBool('PROD')).toBe(true);
      expect(lastKernelReport()!.backends[backend]!.replaced.length).toBeGreaterThan(0);
      expect(tf.getGradient('Sum')).toBeDefined();
    });

    it('gradientCheck accepts a correct gradient in both modes', () => {
      const x = randomTensor([3, 4], 1);
      const r = randomTensor([3, 4], 2);
      const result = expectNoLeaks(() => gradientCheck((t) => tf.mul(tf.tanh(t), r), [x], { mode: 'both' }));
      expect(result.maxRelativeError).toBeLessThan(1e-3);
      expect(result.details.filter((d) => d.kind === 'direction')).toHaveLength(3);
      expect(result.details.filter((d) => d.kind === 'element')).toHaveLength(12);
      tf.dispose([x, r]);
    });

    it('gradientCheck catches a wrong gradient, and expectGradientsMatch explains it', () => {
      const x = randomTensor([5], 3);
      const result = gradientCheck((t) => squareWithWrongGradient(t), [x], { mode: 'elements' });
      expect(result.maxRelativeError).toBeGreaterThan(0.3);
      const worst = result.details.reduce((a, b) => (a.relativeError > b.relativeError ? a : b));
      expect(worst.analytic / worst.numeric).toBeCloseTo(1.5, 2);
      expect(() => expectGradientsMatch((t) => squareWithWrongGradient(t), [x], { label: 'wrong square' })).toThrow(
        /wrong square: analytic gradient differs from finite differences on .* numeric .* analytic/s,
      );
      x.dispose();
    });

    it('gradientCheck differentiates only the inputs in wrt and skips int32 inputs by default', () => {
      const table = randomTensor([4, 3], 4);
      const ids = tf.tensor1d([0, 2, 2], 'int32');
      const result = gradientCheck((t, i) => tf.gather(t, i), [table, ids], { mode: 'elements', maxElements: 5 });
      expect(result.details.every((d) => d.input === 0)).toBe(true);
      expect(result.details).toHaveLength(5);
      expect(result.maxRelativeError).toBeLessThan(1e-3);
      expect(() => gradientCheck((t) => t, [ids])).toThrow(/no float32 input/);
      tf.dispose([table, ids]);
    });

    it('expectNoLeaks passes clean code and reports leaks, sync and async', async () => {
      expect(expectNoLeaks(() => tf.tidy(() => tf.sum(tf.ones([3])).dataSync()[0]))).toBe(3);
      let leaked: tf.Tensor | undefined;
      expect(() =>
        expectNoLeaks(() => {
          leaked = tf.ones([2]);
        }),
      ).toThrow(/1 tensor\(s\) leaked/);
      leaked!.dispose();
      await expect(expectNoLeaks(async () => 'fine')).resolves.toBe('fine');
      await expect(
        expectNoLeaks(async () => {
          leaked = tf.zeros([1]);
        }),
      ).rejects.toThrow(/leaked/);
      leaked!.dispose();
    });

    it('expectClose names the worst element, and compares tensors, arrays and shapes', () => {
      const t = tf.tensor2d([1, 2, 3, 4], [2, 2]);
      expectClose(t, [1, 2, 3, 4.000001], 1e-5);
      expect(() => expectClose(t, [1, 2, 3.5, 4], 1e-3)).toThrow(/1 of 4 values differ.*max abs error 5\.000e-1.*index 2: actual 3, expected 3\.5/);
      expect(() => expectClose(t, tf.tensor1d([1, 2, 3, 4]))).toThrow(/shape \[2,2\] differs from expected \[4\]/);
      expect(() => expectClose([1, NaN], [1, 2])).toThrow(/index 1/);
      expectClose(new Float32Array([NaN, Infinity]), [NaN, Infinity], 0);
      expect(() => expectClose([1], [Infinity])).toThrow(/differ/);
      t.dispose();
    });

    it('randomTensor and distinctTensor are seeded; distinct values are spaced as asked', () => {
      const a = randomTensor([10], 5);
      const b = randomTensor([10], 5);
      expectClose(a, b, 0);
      const d = distinctTensor([2, 3], 6, 0.5);
      const values = Array.from(d.dataSync()).sort((p, q) => p - q);
      expect(values).toEqual([-1.25, -0.75, -0.25, 0.25, 0.75, 1.25]);
      tf.dispose([a, b, d]);
    });
  });
}
