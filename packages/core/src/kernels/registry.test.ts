/**
 * registerS2CPNetKernels: explicit (nothing on import), idempotent, reports what it installed, and undoable.
 * The steps depend on each other (a fresh process state), so they run in order in one suite.
 */
import * as tf from '@tensorflow/tfjs-core';
import { describe, expect, it } from 'vitest';
import { registerS2CPNetKernels, restoreStockKernels, s2cpnetKernelReport } from './index';

const WASM_ADDED = [
  'Conv2DBackpropFilter',
  'DepthwiseConv2dNativeBackpropFilter',
  'DepthwiseConv2dNativeBackpropInput',
  'UnsortedSegmentSum',
];
const WASM_REPLACED = ['Conv2DBackpropInput', 'BatchMatMul', '_FusedMatMul', 'MaxPoolGrad', 'ResizeBilinearGrad', 'ResizeNearestNeighborGrad'];
const CPU_REPLACED = ['Conv2DBackpropFilter', 'DepthwiseConv2dNativeBackpropFilter', 'UnsortedSegmentSum', 'ResizeBilinearGrad', 'ResizeNearestNeighborGrad', 'BatchMatMul'];

const sorted = (names: string[]) => [...names].sort();

describe('registerS2CPNetKernels', () => {
  it('skips a backend whose package is not loaded, and one it has no kernels for', () => {
    tf.env().set('PROD', true);
    const report = registerS2CPNetKernels({ backends: ['wasm', 'webgl'] });
    expect(report.backends['wasm']!.added).toEqual([]);
    expect(report.backends['wasm']!.skipped).toMatch(/not loaded/);
    expect(report.backends['webgl']!.skipped).toMatch(/no kernels for backend 'webgl'/);
    restoreStockKernels();
  });

  it('changes nothing when its module is imported', async () => {
    await import('@tensorflow/tfjs-layers');
    await import('@tensorflow/tfjs-backend-cpu');
    await import('@tensorflow/tfjs-backend-wasm');
    await import('./index');
    expect(tf.getKernel('UnsortedSegmentSum', 'wasm')).toBeUndefined();
    expect(tf.getKernel('Conv2DBackpropFilter', 'wasm')).toBeUndefined();
    expect(s2cpnetKernelReport().gradients).toEqual([]);
    expect(s2cpnetKernelReport().backends['cpu']!.replaced).toEqual([]);
  });

  it('installs the wasm and cpu kernels and the gradient overrides, and says so', async () => {
    expect(await tf.setBackend('wasm')).toBe(true);
    const stockCpuSegmentSum = tf.getKernel('UnsortedSegmentSum', 'cpu');
    const report = registerS2CPNetKernels();
    expect(sorted(report.backends['wasm']!.added)).toEqual(sorted(WASM_ADDED));
    expect(sorted(report.backends['wasm']!.replaced)).toEqual(sorted(WASM_REPLACED));
    expect(report.backends['cpu']!.added).toEqual([]);
    expect(sorted(report.backends['cpu']!.replaced)).toEqual(sorted(CPU_REPLACED));
    expect(sorted(report.gradients)).toEqual(['AvgPool', 'BatchMatMul', 'FusedBatchNorm']);
    expect(report.stockGradientsMissing).toBe(false);
    for (const name of WASM_ADDED) expect(tf.getKernel(name, 'wasm')).toBeDefined();
    expect(tf.getKernel('UnsortedSegmentSum', 'cpu')).not.toBe(stockCpuSegmentSum);
  });

  it('is idempotent: a second call installs nothing new and reports the same', () => {
    const before = [...WASM_ADDED, ...WASM_REPLACED].map((name) => tf.getKernel(name, 'wasm'));
    const gradient = tf.getGradient('BatchMatMul');
    const first = s2cpnetKernelReport();
    const second = registerS2CPNetKernels();
    expect(second).toEqual(first);
    expect([...WASM_ADDED, ...WASM_REPLACED].map((name) => tf.getKernel(name, 'wasm'))).toEqual(before);
    expect(tf.getGradient('BatchMatMul')).toBe(gradient);
  });

  it('the installed kernels work: a conv gradient on wasm has the right shape and no leaks', () => {
    const before = tf.memory().numTensors;
    const x = tf.ones([1, 4, 4, 2]) as tf.Tensor4D;
    const w = tf.ones([3, 3, 2, 1]) as tf.Tensor4D;
    const dw = tf.grad((t: tf.Tensor) => tf.sum(tf.conv2d(x, t as tf.Tensor4D, 1, 'valid')))(w);
    // Every filter tap sees 2×2 output positions of an all-ones input.
    expect(Array.from(dw.dataSync())).toEqual(new Array(18).fill(4));
    tf.dispose([x, w, dw]);
    expect(tf.memory().numTensors).toBe(before);
  });

  it('restoreStockKernels puts the stock kernels and gradients back, and registering again works', () => {
    const oursBatchMatMulGradient = tf.getGradient('BatchMatMul');
    restoreStockKernels();
    expect(tf.getKernel('UnsortedSegmentSum', 'wasm')).toBeUndefined();
    expect(tf.getKernel('Conv2DBackpropFilter', 'wasm')).toBeUndefined();
    expect(tf.getKernel('BatchMatMul', 'wasm')).toBeDefined();
    expect(tf.getGradient('BatchMatMul')).toBeDefined();
    expect(tf.getGradient('BatchMatMul')).not.toBe(oursBatchMatMulGradient);
    expect(s2cpnetKernelReport().gradients).toEqual([]);
    const again = registerS2CPNetKernels({ backends: ['wasm'] });
    expect(sorted(again.backends['wasm']!.added)).toEqual(sorted(WASM_ADDED));
    expect(tf.getGradient('BatchMatMul')).toBe(oursBatchMatMulGradient);
  });
});
