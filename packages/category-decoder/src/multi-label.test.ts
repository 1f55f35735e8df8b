import * as tf from '@tensorflow/tfjs-core';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import {
  checkWeightGradients,
  expectClose,
  expectGradientsMatch,
  expectNoLeaks,
  perturbWeights,
  randomTensor,
  reference64,
  testBackends,
  useBackend,
} from '@s2cpnet/core/testing';
import { binaryCrossEntropyWithLogits } from './loss';
import { MultiLabelCategoryDecoder } from './multi-label';
import { predictCategories } from './predict';
import { QueryDecoderLayer } from './query-decoder-layer';
import { multiLabelParameterCount } from './size';
import * as ref from './testing/reference64';

const sizes = { numClasses: 5, memoryWidth: 6, dim: 8, numHeads: 2, ffnDim: 12 };
const images = 2;
const memoryTokens = 4;

function values(t: tf.Tensor): Float32Array {
  const v = t.dataSync().slice() as Float32Array;
  t.dispose();
  return v;
}

for (const backend of testBackends()) {
  describe(`multi-label category decoder on ${backend}`, () => {
    let memory: tf.Tensor3D;
    beforeAll(async () => {
      await useBackend(backend);
      memory = randomTensor([images, memoryTokens, sizes.memoryWidth], 1) as tf.Tensor3D;
    });
    afterAll(() => memory.dispose());

    describe.each(['per-class', 'shared'] as const)('%s classifier', (classifier) => {
      let head: MultiLabelCategoryDecoder;
      beforeAll(() => {
        head = new MultiLabelCategoryDecoder({ ...sizes, classifier, dropout: 0.1, seed: 3 });
        head.ensureBuilt([null, sizes.memoryWidth]);
        perturbWeights(head, 4, 0.1);
      });
      afterAll(() => head.dispose());

      it('matches the float64 equations', () => {
        const logits = expectNoLeaks(() => values(head.logits(memory)));
        const weights = reference64.readWeights(head);
        const rows = memory.arraySync();
        const expected = rows.map((m) => ref.multiLabelLogits(weights, sizes.numHeads, m, classifier));
        expectClose(logits, expected.flat(), 1e-5);
      });

      it('has memory gradients that agree with finite differences', () => {
        const targets = tf.tensor2d([[1, 0, 0, 1, 0], [0, 1, 1, 1, 0]]);
        expectNoLeaks(() => expectGradientsMatch((m) => head.loss(head.logits(m as tf.Tensor3D), targets), [memory], { label: `${classifier} head` }));
        targets.dispose();
      });

      it('has weight gradients that agree with finite differences and reach every weight', () => {
        // Probe-weighted logits rather than the scalar loss: their float64 sum keeps float32 rounding out of the
        // finite differences (the loss's own gradient is checked separately below). Entries with small gradients
        // still carry a few percent of float32 noise; a wrong gradient is off by O(1).
        const probe = randomTensor([images, sizes.numClasses], 13);
        const result = expectNoLeaks(() => checkWeightGradients(head, () => tf.mul(head.logits(memory), probe)));
        expect(result.unreached).toEqual([]);
        expect(result.maxRelativeError, result.worstPath).toBeLessThan(5e-2);
        probe.dispose();
      });

      it('has as many parameters as the stated formula', () => {
        expect(head.countParams()).toBe(multiLabelParameterCount({ ...sizes, classifier }));
      });

      it('applies dropout only in training, reproducibly under a dropout seed, and gives [B,K]', () => {
        const inference = head.logits(memory);
        const a = head.logits(memory, { training: true, dropoutSeed: 1 });
        const b = head.logits(memory, { training: true, dropoutSeed: 1 });
        const c = head.logits(memory, { training: true, dropoutSeed: 2 });
        expect(inference.shape).toEqual([images, sizes.numClasses]);
        expectClose(a, b, 0);
        const difference = (x: tf.Tensor, y: tf.Tensor) => tf.tidy(() => tf.max(tf.abs(tf.sub(x, y))).dataSync()[0]!);
        expect(difference(a, c)).toBeGreaterThan(1e-4);
        expect(difference(a, inference)).toBeGreaterThan(1e-4);
        tf.dispose([inference, a, b, c]);
      });
    });

    it('rejects memory of the wrong width and targets with the wrong class count', () => {
      const head = new MultiLabelCategoryDecoder({ ...sizes, seed: 1 });
      const wide = tf.zeros([1, 4, 7]) as tf.Tensor3D;
      expect(() => head.logits(wide)).toThrow(/memory.*width 6/);
      const logits = head.logits(memory);
      const targets = tf.zeros([2, 4]) as tf.Tensor2D;
      expect(() => head.loss(logits, targets)).toThrow(/targets.*expected 5 classes/);
      expect(() => new MultiLabelCategoryDecoder({ ...sizes, classifier: 'other' as 'shared' })).toThrow(/classifier/);
      tf.dispose([wide, logits, targets]);
      head.dispose();
    });

    it('runs the query decoder layer as the float64 post-norm equations (with and without a causal mask)', () => {
      const layer = new QueryDecoderLayer({ dim: 8, numHeads: 2, ffnDim: 12, dropout: 0, seed: 9 });
      layer.ensureBuilt([null, 8]);
      perturbWeights(layer, 10, 0.1);
      const weights = reference64.readWeights(layer);
      const x = randomTensor([2, 3, 8], 11) as tf.Tensor3D;
      const m = randomTensor([2, 4, 8], 12) as tf.Tensor3D;
      for (const causal of [false, true]) {
        const out = expectNoLeaks(() => values(layer.apply([x, m], { causal }) as tf.Tensor));
        const xs = x.arraySync();
        const ms = m.arraySync();
        const expected = xs.map((rows, b) => ref.postNormLayer(rows, ms[b]!, weights, '', 2, causal));
        expectClose(out, expected.flat(2), 1e-5);
      }
      tf.dispose([x, m]);
      layer.dispose();
    });

    describe('binaryCrossEntropyWithLogits', () => {
      it('matches the float64 textbook form and its gradient matches finite differences', () => {
        const logits = randomTensor([3, 4], 5, 2);
        const targets = tf.tensor2d([[1, 0, 1, 0], [0, 0, 0, 1], [1, 1, 1, 1]]);
        const value = expectNoLeaks(() => values(binaryCrossEntropyWithLogits(logits, targets)));
        expectClose(value, [ref.binaryCrossEntropy(logits.arraySync() as number[][], targets.arraySync() as number[][])], 1e-6);
        expectGradientsMatch((z) => binaryCrossEntropyWithLogits(z!, targets), [logits], { mode: 'both' });
        tf.dispose([logits, targets]);
      });

      it('stays finite and exact for huge logits (no sigmoid saturation)', () => {
        const logits = tf.tensor2d([[100, -100, 100, -100]]);
        const targets = tf.tensor2d([[0, 1, 1, 0]]);
        // Wrong side: loss |z|; right side: log(1+e^-100) ~ 0. Mean = (100 + 100 + 0 + 0) / 4.
        expectClose(binaryCrossEntropyWithLogits(logits, targets), [50], 1e-6);
        const grads = tf.grad((z: tf.Tensor) => binaryCrossEntropyWithLogits(z, targets))(logits);
        expectClose(grads, [0.25, -0.25, 0, 0], 1e-6);
        tf.dispose([logits, targets, grads]);
      });

      it('rejects targets of another shape', () => {
        const logits = tf.zeros([2, 3]);
        const targets = tf.zeros([2, 4]);
        expect(() => binaryCrossEntropyWithLogits(logits, targets)).toThrow(/targets.*\[2, 3\].*\[2, 4\]/);
        tf.dispose([logits, targets]);
      });
    });

    describe('predictCategories', () => {
      const names = ['airplane', 'building', 'road', 'tree', 'water'];

      it('keeps classes with probability >= threshold, most probable first', () => {
        const logits = tf.tensor2d([
          [2, -1, 0, 3, 0.1],
          [-5, -4, -3, -2, -1],
        ]);
        const [first, second] = predictCategories(logits as tf.Tensor2D, names);
        expect(first!.map((p) => p.name)).toEqual(['tree', 'airplane', 'water', 'road']);
        expect(first![0]!.probability).toBeCloseTo(1 / (1 + Math.exp(-3)), 10);
        expect(second).toEqual([]);
        expect(predictCategories(logits as tf.Tensor2D, names, 0.7)[0]!.map((p) => p.index)).toEqual([3, 0]);
        logits.dispose();
      });

      it('accepts plain arrays and single rows, breaks ties by class index, and checks names', () => {
        expect(predictCategories([0.5, 0.5, -1, 0.5, 2], names).map((p) => p.name)).toEqual(['water', 'airplane', 'building', 'tree']);
        expect(predictCategories([[-40, 40, 0, 0, 0]], names, 0.99)).toEqual([[{ name: 'building', index: 1, probability: 1 }]]);
        expect(() => predictCategories([1, 2], names)).toThrow(/classNames.*5 names.*2 classes/);
        expect(() => predictCategories([1, 2, 3, 4, 5], names, 2)).toThrow(/threshold/);
      });
    });
  });
}
