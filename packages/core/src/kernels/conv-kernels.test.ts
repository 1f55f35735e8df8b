/**
 * The composed convolution backprop kernels return exactly what the cpu backend's own (direct, loop-based) kernels
 * return, over paddings, strides and filter shapes the finite-difference cases do not all reach.
 */
import * as tf from '@tensorflow/tfjs-core';
import { beforeAll, describe, expect, it } from 'vitest';
import { expectClose, expectNoLeaks, randomTensor, testBackends, useBackend } from '../testing/index';
import { kernelLookupFor } from './backend-access';
import { CONV_BACKPROP_KERNELS_NEEDED, makeConv2DBackpropFilter } from './conv-backprop';
import { registerS2CPNetKernels, restoreStockKernels } from './index';

type Pad = 'same' | 'valid' | number;

interface ConvShape {
  x: number[];
  filter: number[];
  strides: number | [number, number];
  pad: Pad;
}

const DENSE: ConvShape[] = [
  { x: [2, 7, 7, 3], filter: [3, 3, 3, 4], strides: 1, pad: 'same' },
  { x: [2, 8, 8, 3], filter: [3, 3, 3, 4], strides: 2, pad: 'same' },
  { x: [2, 7, 7, 3], filter: [3, 3, 3, 4], strides: 2, pad: 'valid' },
  { x: [2, 6, 6, 3], filter: [1, 1, 3, 5], strides: 1, pad: 'same' },
  { x: [2, 7, 7, 5], filter: [1, 1, 5, 3], strides: 2, pad: 'same' },
  { x: [2, 8, 8, 5], filter: [1, 1, 5, 3], strides: 2, pad: 'valid' },
  { x: [2, 7, 7, 2], filter: [1, 1, 2, 3], strides: 2, pad: 1 },
  { x: [1, 11, 11, 3], filter: [7, 7, 3, 4], strides: 2, pad: 'same' },
  { x: [1, 12, 12, 3], filter: [7, 7, 3, 4], strides: 2, pad: 'same' },
  { x: [2, 9, 9, 2], filter: [3, 3, 2, 2], strides: 2, pad: 1 },
  { x: [2, 9, 8, 2], filter: [5, 3, 2, 2], strides: [2, 1], pad: 'same' },
  { x: [1, 10, 10, 2], filter: [4, 4, 2, 3], strides: 3, pad: 'valid' },
  { x: [1, 10, 10, 2], filter: [2, 2, 2, 3], strides: 2, pad: 'same' },
  { x: [1, 5, 5, 20], filter: [3, 3, 20, 17], strides: 2, pad: 'same' },
  // Channel counts past the 32-wide tiles of the phase-filter transpose, and batches > 2 for the im2col product.
  { x: [3, 6, 6, 40], filter: [3, 3, 40, 37], strides: 1, pad: 'same' },
  { x: [3, 9, 9, 33], filter: [3, 3, 33, 35], strides: 2, pad: 'valid' },
  { x: [2, 8, 7, 36], filter: [3, 3, 36, 33], strides: 2, pad: 'same' },
  { x: [4, 5, 5, 34], filter: [1, 1, 34, 40], strides: 1, pad: 'valid' },
  { x: [2, 7, 7, 34], filter: [1, 1, 34, 40], strides: 2, pad: 'valid' },
];

const DEPTHWISE: ConvShape[] = [
  { x: [2, 7, 7, 3], filter: [3, 3, 3, 1], strides: 1, pad: 'same' },
  { x: [2, 8, 8, 4], filter: [3, 3, 4, 1], strides: 2, pad: 'same' },
  { x: [2, 7, 7, 4], filter: [3, 3, 4, 2], strides: 2, pad: 'valid' },
  { x: [1, 9, 9, 2], filter: [5, 5, 2, 3], strides: 1, pad: 'same' },
  { x: [2, 9, 9, 3], filter: [3, 3, 3, 1], strides: 2, pad: 1 },
  { x: [1, 10, 11, 2], filter: [2, 2, 2, 2], strides: 3, pad: 'same' },
];

const label = (s: ConvShape) => `x [${s.x.join(',')}] filter [${s.filter.join(',')}] strides ${JSON.stringify(s.strides)} pad ${s.pad}`;

/** Runs the two backprop kernels of one shape on the current backend; returns [dX, dW]. */
function backprop(s: ConvShape, depthwise: boolean, seed: number): Float32Array[] {
  return tf.tidy(() => {
    const x = randomTensor(s.x, seed) as tf.Tensor4D;
    const filter = randomTensor(s.filter, seed + 1) as tf.Tensor4D;
    const y = depthwise ? tf.depthwiseConv2d(x, filter, s.strides, s.pad) : tf.conv2d(x, filter, s.strides, s.pad);
    const dy = randomTensor(y.shape, seed + 2);
    const common: tf.NamedAttrMap = depthwise
      ? { strides: s.strides, pad: s.pad, dilations: 1 }
      : { strides: s.strides, pad: s.pad, dataFormat: 'NHWC' };
    const prefix = depthwise ? 'DepthwiseConv2dNative' : 'Conv2D';
    const engine = tf.engine();
    const dx = engine.runKernel(`${prefix}BackpropInput`, { dy, filter }, { ...common, inputShape: s.x }) as tf.Tensor;
    const dw = engine.runKernel(`${prefix}BackpropFilter`, { x, dy }, { ...common, filterShape: s.filter }) as tf.Tensor;
    expect(dx.shape).toEqual(s.x);
    expect(dw.shape).toEqual(s.filter);
    return [dx.dataSync().slice() as Float32Array, dw.dataSync().slice() as Float32Array];
  });
}

const backends = testBackends();

describe.runIf(backends.includes('cpu'))('composed convolution backprop kernels', () => {
  const reference = new Map<string, Float32Array[]>();

  beforeAll(async () => {
    await useBackend('cpu');
    restoreStockKernels();
    DENSE.forEach((s, i) => reference.set(`dense ${i}`, backprop(s, false, 100 * i)));
    DEPTHWISE.forEach((s, i) => reference.set(`depthwise ${i}`, backprop(s, true, 100 * i)));
    registerS2CPNetKernels();
  });

  for (const backend of backends) {
    DENSE.forEach((s, i) => {
      it(`conv2d ${label(s)}: ${backend} equals cpu's own kernels`, async () => {
        await useBackend(backend);
        const [dx, dw] = expectNoLeaks(() => backprop(s, false, 100 * i));
        const [refDx, refDw] = reference.get(`dense ${i}`)!;
        expectClose(dx!, refDx!, { atol: 1e-5, rtol: 1e-5 });
        expectClose(dw!, refDw!, { atol: 1e-5, rtol: 1e-5 });
      });
    });
    DEPTHWISE.forEach((s, i) => {
      it(`depthwiseConv2d ${label(s)}: ${backend} equals cpu's own kernels`, async () => {
        await useBackend(backend);
        const [dx, dw] = expectNoLeaks(() => backprop(s, true, 100 * i));
        const [refDx, refDw] = reference.get(`depthwise ${i}`)!;
        expectClose(dx!, refDx!, { atol: 1e-5, rtol: 1e-5 });
        expectClose(dw!, refDw!, { atol: 1e-5, rtol: 1e-5 });
      });
    });
  }

  // The filter gradient builds an im2col matrix up to a size limit and uses a dilated forward convolution above it;
  // the test shapes are all under the limit, so the second formulation is reached with a limit of 0.
  for (const backend of backends) {
    it(`conv2d filter gradient without im2col (the large-input formulation) equals cpu's own kernel on ${backend}`, async () => {
      await useBackend(backend);
      const lookup = kernelLookupFor(backend, (name) => tf.getKernel(name, backend)?.kernelFunc, CONV_BACKPROP_KERNELS_NEEDED);
      if (typeof lookup !== 'function') throw new Error(`missing kernels ${lookup.missing.join(', ')}`);
      const withoutIm2col = makeConv2DBackpropFilter(lookup, 0);
      DENSE.forEach((s, i) => {
        if (s.filter[0] === 1 && s.filter[1] === 1) return; // 1×1 filters are one matMul either way
        const dw = expectNoLeaks(() =>
          tf.tidy(() => {
            const x = randomTensor(s.x, 100 * i) as tf.Tensor4D;
            const filter = randomTensor(s.filter, 100 * i + 1) as tf.Tensor4D;
            const dy = randomTensor(tf.conv2d(x, filter, s.strides, s.pad).shape, 100 * i + 2);
            const attrs = { strides: s.strides, pad: s.pad, dataFormat: 'NHWC', filterShape: s.filter };
            const info = withoutIm2col({ inputs: { x, dy }, backend: tf.backend(), attrs }) as tf.TensorInfo;
            return tf.engine().makeTensorFromTensorInfo(info).dataSync().slice() as Float32Array;
          }),
        );
        expectClose(dw, reference.get(`dense ${i}`)![1]!, { atol: 1e-5, rtol: 1e-5 });
      });
    });
  }

  // tf.grads rejects dilated depthwise convs, but the kernels can be called directly. A backprop kernel is the adjoint
  // of the forward op: <dy, conv(x, w)> = <dX(dy, w), x> = <dW(x, dy), w>. (cpu's own dilated dX breaks this.)
  it.runIf(backends.includes('wasm'))('dilated depthwise backprop (stride 1) is the adjoint of the forward op on wasm', async () => {
    await useBackend('wasm');
    tf.tidy(() => {
      const x = randomTensor([1, 9, 9, 2], 7) as tf.Tensor4D;
      const filter = randomTensor([3, 3, 2, 2], 8) as tf.Tensor4D;
      const y = tf.depthwiseConv2d(x, filter, 1, 'same', 'NHWC', 2);
      const dy = randomTensor(y.shape, 9);
      const attrs = { strides: 1, pad: 'same', dilations: 2 };
      const dx = tf.engine().runKernel('DepthwiseConv2dNativeBackpropInput', { dy, filter }, { ...attrs, inputShape: x.shape }) as tf.Tensor;
      const dw = tf.engine().runKernel('DepthwiseConv2dNativeBackpropFilter', { x, dy }, { ...attrs, filterShape: filter.shape }) as tf.Tensor;
      const forward = tf.sum(tf.mul(dy, y)).dataSync()[0]!;
      expectClose([tf.sum(tf.mul(dx, x)).dataSync()[0]!, tf.sum(tf.mul(dw, filter)).dataSync()[0]!], [forward, forward], 1e-4);
    });
  });
});
