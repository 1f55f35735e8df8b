import * as tf from '@tensorflow/tfjs-core';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { expectClose, expectNoLeaks, testBackends, useBackend } from '@s2cpnet/core/testing';
import { MobileNetV1 } from '../mobilenet-v1';
import { ResNet50 } from '../resnet50';
import { randomizeWeights, seededTensor } from '../testing/helpers';
import {
  bottleneckRef,
  convBnRef,
  depthwiseSeparableRef,
  maxPoolRef,
  toArray64,
  upsampleRef,
  type Array64,
  type UnitTrace,
} from '../testing/reference';
import { Bottleneck } from './bottleneck';
import { setTrainableDeep } from './conv-bn';
import { DepthwiseSeparable } from './depthwise-separable';

const TOLERANCE = { atol: 1e-5, rtol: 1e-5 };

function run(layerForward: () => tf.Tensor): Float32Array {
  const y = layerForward();
  const values = y.dataSync().slice() as Float32Array;
  y.dispose();
  return values;
}

for (const backend of testBackends()) {
  describe(`float64 reference vs tfjs layers on ${backend}`, () => {
    beforeAll(() => useBackend(backend));

    // Odd spatial size: strided 3x3 and 1x1 convs with symmetric padding are checked on an uneven grid too.
    const inputs: tf.Tensor4D[] = [];
    afterAll(() => tf.dispose(inputs));
    const input = (shape: [number, number, number, number], seed: number) => {
      const t = seededTensor(shape, seed) as tf.Tensor4D;
      inputs.push(t);
      return t;
    };

    for (const strideOn of ['1x1', '3x3'] as const) {
      describe(`bottleneck, stride 2 on the ${strideOn} conv, projection shortcut`, () => {
        const block = new Bottleneck({ inputChannels: 6, midChannels: 4, outputChannels: 12, strides: 2, strideOn, seed: 3 });
        beforeAll(() => {
          block.ensureBuilt([null, null, null, 6]);
          randomizeWeights(block, 11);
        });
        afterAll(() => block.dispose());

        it('inference call of a trainable block agrees to 1e-5: cached fold, and fold on the fly inside a gradient tape', () => {
          const x = input([2, 7, 7, 6], 1);
          const expected = bottleneckRef(toArray64(x), block, false);
          expect(expected.shape).toEqual([2, 4, 4, 12]);
          expectClose(run(() => block.forward(x, { training: false })), expected.data, TOLERANCE);
          const second = expectNoLeaks(() => run(() => block.forward(x, { training: false })));
          expectClose(second, expected.data, TOLERANCE);
          // Inside tf.grad the fold is recomputed (differentiable); capture the forward value through the tape.
          let taped: Float32Array | undefined;
          tf.grad((input: tf.Tensor) => {
            const y = block.forward(input as tf.Tensor4D);
            taped = y.dataSync().slice() as Float32Array;
            return tf.sum(y);
          })(x).dispose();
          expectClose(taped!, expected.data, TOLERANCE);
        });

        it('frozen block (cached folded weights) agrees to 1e-5, even in a training call', () => {
          const x = input([2, 7, 7, 6], 2);
          const expected = bottleneckRef(toArray64(x), block, false);
          setTrainableDeep(block, false);
          try {
            const first = run(() => block.forward(x, { training: true }));
            expectClose(first, expected.data, TOLERANCE);
            // The cache now exists; a second call must neither leak nor change.
            const second = expectNoLeaks(() => run(() => block.forward(x, { training: true })));
            expectClose(second, first, 0);
          } finally {
            setTrainableDeep(block, true);
          }
        });

        it('training call (batch statistics) agrees to 1e-5 and updates the moving averages like the reference', () => {
          const x = input([3, 7, 7, 6], 3);
          const trace: UnitTrace[] = [];
          const expected = bottleneckRef(toArray64(x), block, true, trace);
          const before = trace.map((t) => ({ mean: toArray64(t.unit.bn.movingMean).data, variance: toArray64(t.unit.bn.movingVariance).data }));
          const actual = run(() => block.forward(x, { training: true }));
          expectClose(actual, expected.data, TOLERANCE);
          trace.forEach((t, i) => {
            const m = t.unit.batchNormMomentum;
            const unbiased = t.batchVariance!.map((v) => (v * t.count!) / (t.count! - 1));
            expectClose(toArray64(t.unit.bn.movingMean).data, before[i]!.mean.map((v, c) => m * v + (1 - m) * t.batchMean![c]!), TOLERANCE);
            expectClose(toArray64(t.unit.bn.movingVariance).data, before[i]!.variance.map((v, c) => m * v + (1 - m) * unbiased[c]!), TOLERANCE);
          });
        });
      });
    }

    it('identity-shortcut bottleneck agrees to 1e-5', () => {
      const block = new Bottleneck({ inputChannels: 8, midChannels: 2, outputChannels: 8, seed: 5 });
      block.ensureBuilt([null, null, null, 8]);
      randomizeWeights(block, 12);
      expect(block.shortcut).toBeNull();
      const x = input([2, 5, 5, 8], 4);
      expectClose(run(() => block.forward(x)), bottleneckRef(toArray64(x), block, false).data, TOLERANCE);
      expectClose(run(() => block.forward(x, { training: true })), bottleneckRef(toArray64(x), block, true).data, TOLERANCE);
      block.dispose();
    });

    it("depthwise-separable block (TF 'same' padding, ReLU6) agrees to 1e-5 at stride 1 and 2", () => {
      for (const strides of [1, 2]) {
        const block = new DepthwiseSeparable({ inputChannels: 5, outputChannels: 7, strides, seed: 6 });
        block.ensureBuilt([null, null, null, 5]);
        randomizeWeights(block, 13 + strides);
        // Scale the input so that some activations pass 6 and ReLU6's clipping is exercised.
        const x = tf.tidy(() => tf.mul(seededTensor([2, 8, 8, 5], 20 + strides), 4)) as tf.Tensor4D;
        inputs.push(x);
        const expected = depthwiseSeparableRef(toArray64(x), block, false);
        expect(expected.data.some((v) => v === 6)).toBe(true);
        expectClose(run(() => block.forward(x)), expected.data, TOLERANCE);
        expectClose(run(() => block.forward(x, { training: true })), depthwiseSeparableRef(toArray64(x), block, true).data, TOLERANCE);
        block.dispose();
      }
    });

    it('a whole reduced ResNet (stem, padded max pool, 4 stages, 2x grid) agrees to 1e-5', () => {
      const net = new ResNet50({ baseWidth: 2, blocksPerStage: [2, 1, 1, 1], inputSize: 64, grid: 4, seed: 7 });
      randomizeWeights(net, 14);
      const x = input([2, 64, 64, 3], 5);
      let ref: Array64 = convBnRef(toArray64(x), net.stem, false);
      ref = maxPoolRef(ref, 3, 2, 1);
      for (const stage of net.stages) for (const block of stage) ref = bottleneckRef(ref, block, false);
      expect(ref.shape).toEqual([2, 2, 2, 64]);
      const first = run(() => net.encode(x)); // builds the folded-weight cache
      const actual = expectNoLeaks(() => run(() => net.encode(x)));
      expectClose(actual, first, 0);
      expectClose(actual, upsampleRef(ref, 2).data, TOLERANCE);
      net.dispose();
    });

    it('a whole MobileNetV1 0.25 agrees to 1e-5', () => {
      const net = new MobileNetV1({ width: 0.25, inputSize: 32, grid: 'native', seed: 8 });
      randomizeWeights(net, 15);
      const x = input([1, 32, 32, 3], 6);
      let ref: Array64 = convBnRef(toArray64(x), net.stem, false);
      for (const block of net.blocks) ref = depthwiseSeparableRef(ref, block, false);
      expect(ref.shape).toEqual([1, 1, 1, 256]);
      expectClose(run(() => net.encode(x)), ref.data, TOLERANCE);
      net.dispose();
    });
  });
}
