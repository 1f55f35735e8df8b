import * as tf from '@tensorflow/tfjs-core';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { gradientCheck, testBackends, useBackend } from '@s2cpnet/core/testing';
import { MobileNetV1 } from '../mobilenet-v1';
import { ResNet50 } from '../resnet50';
import { randomizeWeights, seededTensor, weightGradientCheck } from '../testing/helpers';
import { inputGradientVsFloat64, mobilenetRef, resnetRef, toArray64, upsampleRef, weightGradientVsFloat64 } from '../testing/reference';
import { Bottleneck } from './bottleneck';
import { DepthwiseSeparable } from './depthwise-separable';

/**
 * Finite differences of ReLU networks in float32 face two errors: a large step crosses ReLU kinks (here the nearest
 * pre-activation can be < 0.01 from zero while a 1e-3 step along a random direction moves pre-activations by ~0.02),
 * a small step drowns in float32 rounding (~1e-3 to 1e-2 relative at 1e-4). Each check therefore reports its best
 * agreement over several steps: a correct gradient agrees at a step where neither error dominates; a wrong one
 * disagrees at every step. Weight gradients are checked one variable at a time (fewer pre-activations move, so fewer
 * kinks are crossed), which also names the variable when one fails.
 */
const STEPS = [1e-2, 1e-3, 3e-4, 1e-4];
const TOLERANCE = 2e-2;

function inputGradientError(f: (x: tf.Tensor) => tf.Tensor, x: tf.Tensor): number {
  return Math.min(...STEPS.map((eps) => gradientCheck(f, [x], { eps, directions: 3 }).maxRelativeError));
}

type Variables = Parameters<typeof weightGradientCheck>[1];

/** Largest (over variables) best (over steps) relative error, with the worst variable's name. */
function weightGradientError(output: () => tf.Tensor, variables: Variables): { error: number; worst: string } {
  let error = 0;
  let worst = '';
  for (const variable of variables) {
    const e = Math.min(...STEPS.map((eps) => weightGradientCheck(output, [variable], { eps, directions: 2 })));
    if (e > error) {
      error = e;
      worst = (variable as unknown as { name: string }).name;
    }
  }
  return { error, worst };
}

function expectWeightGradients(output: () => tf.Tensor, variables: Variables): void {
  const { error, worst } = weightGradientError(output, variables);
  expect(error, `worst variable: ${worst}`).toBeLessThan(TOLERANCE);
}

for (const backend of testBackends()) {
  describe(`gradients vs finite differences on ${backend}`, () => {
    beforeAll(() => useBackend(backend));

    for (const strideOn of ['1x1', '3x3'] as const) {
      describe(`bottleneck (stride on ${strideOn})`, () => {
        const block = new Bottleneck({ inputChannels: 4, midChannels: 3, outputChannels: 8, strides: 2, strideOn, seed: 21 });
        let x: tf.Tensor4D;
        beforeAll(() => {
          x = seededTensor([2, 6, 6, 4], 31) as tf.Tensor4D;
          block.ensureBuilt([null, null, null, 4]);
          randomizeWeights(block, 41);
        });
        afterAll(() => {
          block.dispose();
          x.dispose();
        });

        for (const training of [false, true]) {
          const mode = training ? 'training call (batch statistics)' : 'inference call (folded BN)';
          it(`${mode}: input gradient`, () => {
            expect(inputGradientError((input) => block.forward(input as tf.Tensor4D, { training }), x)).toBeLessThan(TOLERANCE);
          });
          it(`${mode}: weight gradients (every trainable weight)`, () => {
            expect(block.trainableWeights.length).toBe(12); // 4 units x (kernel, gamma, beta)
            expectWeightGradients(() => block.forward(x, { training }), block.trainableWeights);
          });
        }
      });
    }

    it('depthwise-separable block: input and weight gradients, inference and training', () => {
      const block = new DepthwiseSeparable({ inputChannels: 3, outputChannels: 5, strides: 2, seed: 22 });
      block.ensureBuilt([null, null, null, 3]);
      randomizeWeights(block, 42);
      const x = seededTensor([2, 6, 6, 3], 32) as tf.Tensor4D;
      for (const training of [false, true]) {
        expect(inputGradientError((input) => block.forward(input as tf.Tensor4D, { training }), x)).toBeLessThan(TOLERANCE);
        expectWeightGradients(() => block.forward(x, { training }), block.trainableWeights);
      }
      x.dispose();
      block.dispose();
    });

    it('whole encoders with grid upsampling: input gradients agree with finite differences of the float64 reference', () => {
      // Whole ReLU/ReLU6 networks defeat float32 finite differences at every step (MobileNet 0.25 at 32x32: half of
      // its outputs are exactly 0, kinks everywhere); the float64 reference gives exact differences at step 1e-6.
      const resnet = new ResNet50({ baseWidth: 2, blocksPerStage: [1, 1, 1, 1], inputSize: 32, grid: 2, seed: 23 });
      randomizeWeights(resnet, 43);
      const mobilenet = new MobileNetV1({ width: 0.25, inputSize: 32, grid: 2, seed: 24 });
      randomizeWeights(mobilenet, 44);
      const x = seededTensor([2, 32, 32, 3], 33) as tf.Tensor4D;
      const elements = [5, 100, 843, 1434, 1930, 3759, 5098, 6000];
      expect(inputGradientVsFloat64((i) => resnet.encode(i), (a) => upsampleRef(resnetRef(resnet, a), 2), x, elements)).toBeLessThan(1e-3);
      expect(inputGradientVsFloat64((i) => mobilenet.encode(i), (a) => upsampleRef(mobilenetRef(mobilenet, a), 2), x, elements)).toBeLessThan(1e-3);
      x.dispose();
      mobilenet.dispose();
      // Weight gradients of the whole trunk in a training call (batch statistics), on a sample across the depth.
      const xs = seededTensor([2, 32, 32, 3], 35) as tf.Tensor4D;
      const byPath = new Map(resnet.namedWeights().map((w) => [w.path, w.variable]));
      for (const path of ['stem/conv/kernel', 'stage2/block0/conv2/conv/kernel', 'stage4/block0/shortcut/bn/gamma', 'stage4/block0/conv3/bn/beta']) {
        const error = weightGradientVsFloat64(
          () => resnet.encode(xs, { training: true }),
          () => upsampleRef(resnetRef(resnet, toArray64(xs), true), 2),
          byPath.get(path)!,
          [0, 3, 7, 12, 30, 64, 101],
        );
        // The analytic side is accumulated in float32 through batch-norm statistics: ~1e-3 relative is its noise.
        expect(error, path).toBeLessThan(5e-3);
      }
      xs.dispose();
      resnet.dispose();
    });

    it('frozen stem and stage 1 get no gradient; the rest does', () => {
      const resnet = new ResNet50({ baseWidth: 2, blocksPerStage: [1, 1, 1, 1], inputSize: 32, grid: 'native', freeze: 'stem-stage1', seed: 25 });
      const x = seededTensor([2, 32, 32, 3], 34) as tf.Tensor4D;
      const trainable = resnet.trainableWeights.map((w) => w.read() as tf.Variable);
      const { value, grads } = tf.variableGrads(() => tf.sum(resnet.encode(x, { training: true })) as tf.Scalar);
      const names = new Set(Object.keys(grads));
      // tf.variableGrads() without a list takes every trainable tf.Variable: the frozen ones must not be among them.
      const frozenVariables = resnet.namedWeights().filter((w) => /^(stem|stage1)\//.test(w.path)).map((w) => (w.variable.read() as tf.Variable).name);
      expect(frozenVariables.length).toBeGreaterThan(0);
      for (const name of frozenVariables) expect(names.has(name)).toBe(false);
      for (const v of trainable) expect(names.has(v.name)).toBe(true);
      value.dispose();
      tf.dispose(grads);
      x.dispose();
      resnet.dispose();
    });
  });
}
