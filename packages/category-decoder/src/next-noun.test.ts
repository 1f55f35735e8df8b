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
import { NextNounCategoryDecoder, nounSequenceTargets } from './next-noun';
import { predictNounSequence } from './predict';
import { nextNounParameterCount } from './size';
import * as ref from './testing/reference64';

const sizes = { vocabSize: 10, memoryWidth: 6, dim: 8, numLayers: 2, numHeads: 2, ffnDim: 12, maxNouns: 4 };
const START = 1;
const END = 2;
const PAD = 0;
const images = 2;

/** Float64 mean softmax cross-entropy over non-pad targets. */
function sequenceCrossEntropy64(logits: number[][][], targets: number[][]): number {
  let total = 0;
  let count = 0;
  logits.forEach((rows, b) =>
    rows.forEach((row, s) => {
      const target = targets[b]![s]!;
      if (target === PAD) return;
      const max = Math.max(...row);
      const logSum = max + Math.log(row.reduce((a, v) => a + Math.exp(v - max), 0));
      total += logSum - row[target]!;
      count++;
    }),
  );
  return total / count;
}

for (const backend of testBackends()) {
  describe(`next-noun category decoder on ${backend}`, () => {
    let head: NextNounCategoryDecoder;
    let memory: tf.Tensor3D;
    let targets: tf.Tensor2D;
    const nounLists = [
      [5, 7, 3],
      [9, 4, 6, 8, 5, 3],
    ];
    beforeAll(async () => {
      await useBackend(backend);
      head = new NextNounCategoryDecoder({ ...sizes, dropout: 0.1, seed: 2 });
      head.ensureBuilt([null, sizes.memoryWidth]);
      perturbWeights(head, 3, 0.1);
      memory = randomTensor([images, 3, sizes.memoryWidth], 4) as tf.Tensor3D;
      targets = nounSequenceTargets(nounLists, { maxNouns: sizes.maxNouns, endId: END, padId: PAD });
    });
    afterAll(() => {
      tf.dispose([memory, targets]);
      head.dispose();
    });

    it('builds targets: nouns cut to maxNouns, then <end>, then <pad>', () => {
      expect(targets.arraySync()).toEqual([
        [5, 7, 3, END, PAD],
        [9, 4, 6, 8, END],
      ]);
      expect(targets.dtype).toBe('int32');
    });

    it('matches the float64 equations under teacher forcing', () => {
      const logits = expectNoLeaks(() => {
        const l = head.sequenceLogits(memory, targets);
        const v = l.arraySync();
        l.dispose();
        return v;
      });
      const weights = reference64.readWeights(head);
      const memoryRows = memory.arraySync();
      (targets.arraySync() as number[][]).forEach((row, b) => {
        const inputs = [START, ...row.slice(0, -1)];
        expectClose(logits[b]!.flat(), ref.nextNounLogits(weights, sizes.numHeads, sizes.numLayers, memoryRows[b]!, inputs).flat(), 1e-5);
      });
    });

    it('generates on the cached path with the logits of a teacher-forced pass over the words it chose (1e-5)', () => {
      expectNoLeaks(() => {
        const generated = head.generate(memory);
        expect(generated.logits.shape).toEqual([images, sizes.maxNouns + 1, sizes.vocabSize]);
        const argmax = tf.argMax(generated.logits, -1);
        expectClose(argmax, generated.tokens, 0);
        const teacher = head.sequenceLogits(memory, generated.tokens);
        expectClose(generated.logits, teacher, 1e-5);
        tf.dispose([generated.logits, generated.tokens, argmax, teacher]);
      });
    });

    it('implements CategoryHead: flattened [B, S*V] logits and a loss that ignores <pad>', () => {
      const value = expectNoLeaks(() => {
        const logits = head.logits(memory, { nounTokens: targets });
        expect(logits.shape).toEqual([images, (sizes.maxNouns + 1) * sizes.vocabSize]);
        const loss = head.loss(logits, targets);
        const v = loss.dataSync()[0]!;
        tf.dispose([logits, loss]);
        return v;
      });
      const steps = head.sequenceLogits(memory, targets);
      expectClose([value], [sequenceCrossEntropy64(steps.arraySync(), targets.arraySync())], 1e-5);
      steps.dispose();
      const free = head.logits(memory);
      expect(free.shape).toEqual([images, (sizes.maxNouns + 1) * sizes.vocabSize]);
      const short = tf.tensor2d([[5, END], [4, END]], [2, 2], 'int32');
      const shortLogits = head.logits(memory, { nounTokens: short });
      expect(shortLogits.shape).toEqual([images, 2 * sizes.vocabSize]);
      expect(() => head.loss(shortLogits, targets)).toThrow(/logits.*expected \[2, 5 steps x 10 words = 50\]/);
      tf.dispose([free, short, shortLogits]);
    });

    it('reads predicted nouns in generation order, without repeats, until <end>', () => {
      const words = ['<pad>', '<start>', '<end>', '<unk>', 'road', 'tree', 'car', 'house', 'river', 'field'];
      const rows = [
        [5, 5, 7, END, 4],
        [START, 9, PAD, 4, 6],
      ];
      const logits = tf.tidy(() => tf.mul(tf.oneHot(tf.tensor2d(rows, [2, 5], 'int32'), 10), 5));
      expect(predictNounSequence(logits, words, { endId: END })).toEqual([['tree', 'house'], ['field', 'road', 'car']]);
      const flat = tf.reshape(logits, [2, 50]);
      expect(predictNounSequence(flat, words, { endId: END })).toEqual([['tree', 'house'], ['field', 'road', 'car']]);
      tf.dispose([logits, flat]);
      const ids = head.predictNounIds(memory);
      const generated = head.generate(memory);
      const tokens = generated.tokens.arraySync();
      tf.dispose([generated.logits, generated.tokens]);
      ids.forEach((list, b) => {
        expect(new Set(list).size).toBe(list.length);
        for (const id of list) expect(tokens[b]).toContain(id);
        expect(list).not.toContain(END);
      });
    });

    it('has memory gradients that agree with finite differences', () => {
      expectNoLeaks(() =>
        expectGradientsMatch((m) => head.loss(head.logits(m as tf.Tensor3D, { nounTokens: targets }), targets), [memory], { label: 'next-noun head' }),
      );
    });

    it('has weight gradients that agree with finite differences and reach every weight', () => {
      const probe = randomTensor([images, sizes.maxNouns + 1, sizes.vocabSize], 9);
      // Probe-weighted step logits (float64-summed); a few percent of float32 noise remains on entries with small
      // gradients through two ReLU layers, while a wrong gradient is off by O(1).
      const result = expectNoLeaks(() => checkWeightGradients(head, () => tf.mul(head.sequenceLogits(memory, targets), probe)));
      expect(result.unreached).toEqual([]);
      expect(result.maxRelativeError, result.worstPath).toBeLessThan(5e-2);
      probe.dispose();
    });

    it('has as many parameters as the stated formula', () => {
      expect(head.countParams()).toBe(nextNounParameterCount(sizes));
    });

    it('rejects bad shapes with the argument named', () => {
      const long = tf.zeros([2, 6], 'int32') as tf.Tensor2D;
      expect(() => head.sequenceLogits(memory, long)).toThrow(/nounTokens.*1\.\.5 steps/);
      const rows = tf.zeros([3, 2], 'int32') as tf.Tensor2D;
      expect(() => head.sequenceLogits(memory, rows)).toThrow(/nounTokens.*2 rows/);
      const wide = tf.zeros([2, 3, 5]) as tf.Tensor3D;
      expect(() => head.generate(wide)).toThrow(/memory.*width 6/);
      tf.dispose([long, rows, wide]);
    });
  });
}
