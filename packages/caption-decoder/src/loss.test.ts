import * as tf from '@tensorflow/tfjs-core';
import { beforeAll, describe, expect, it } from 'vitest';
import { expectClose, expectGradientsMatch, expectNoLeaks, randomTensor, testBackends, useBackend } from '@s2cpnet/core/testing';
import { captionCrossEntropy } from './loss';
import { crossEntropy } from './testing/reference64';

const targetsRows = [
  [3, 5, 2, 0, 0],
  [4, 4, 6, 7, 2],
  [2, 0, 0, 0, 0],
];

for (const backend of testBackends()) {
  describe(`captionCrossEntropy on ${backend}`, () => {
    beforeAll(() => useBackend(backend));

    it.each([0, 0.1])('matches the float64 mean over non-pad tokens (label smoothing %s)', (smoothing) => {
      const logits = randomTensor([3, 5, 9], 1, 3) as tf.Tensor3D;
      const targets = tf.tensor2d(targetsRows, [3, 5], 'int32');
      const value = expectNoLeaks(() => {
        const loss = captionCrossEntropy(logits, targets, 0, { labelSmoothing: smoothing });
        const v = loss.dataSync()[0]!;
        loss.dispose();
        return v;
      });
      const expected = crossEntropy(logits.arraySync() as number[][][], targetsRows, 0, smoothing);
      expectClose([value], [expected], 1e-5);
      tf.dispose([logits, targets]);
    });

    it('ignores pad positions entirely (their logits do not matter)', () => {
      const logits = randomTensor([3, 5, 9], 2) as tf.Tensor3D;
      const targets = tf.tensor2d(targetsRows, [3, 5], 'int32');
      const padMask = tf.expandDims(tf.cast(tf.equal(targets, 0), 'float32'), -1);
      const changed = tf.add(logits, tf.mul(padMask, 50)) as tf.Tensor3D;
      const a = captionCrossEntropy(logits, targets);
      const b = captionCrossEntropy(changed, targets);
      expectClose(a, b, 1e-6);
      tf.dispose([logits, targets, padMask, changed, a, b]);
    });

    it('is finite for huge logits and 0 for an all-pad batch', () => {
      const logits = tf.tensor3d([[[1000, -1000, 0, 500]]]);
      const targets = tf.tensor2d([[1]], [1, 1], 'int32');
      const loss = captionCrossEntropy(logits, targets);
      expectClose(loss, [2000], 1e-6);
      const allPad = tf.tensor2d([[0]], [1, 1], 'int32');
      const zero = captionCrossEntropy(logits, allPad);
      expect(zero.dataSync()[0]).toBe(0);
      tf.dispose([logits, targets, loss, allPad, zero]);
    });

    it('has gradients that agree with finite differences', () => {
      const logits = randomTensor([3, 5, 9], 3);
      const targets = tf.tensor2d(targetsRows, [3, 5], 'int32');
      expectGradientsMatch((l) => captionCrossEntropy(l as tf.Tensor3D, targets, 0, { labelSmoothing: 0.1 }), [logits], { mode: 'both', tolerance: 2e-2 });
      tf.dispose([logits, targets]);
    });

    it('rejects mismatched shapes, float targets and a bad smoothing value', () => {
      const logits = tf.zeros([2, 3, 4]) as tf.Tensor3D;
      const wrong = tf.zeros([2, 4], 'int32') as tf.Tensor2D;
      const floats = tf.zeros([2, 3]) as tf.Tensor2D;
      const ok = tf.zeros([2, 3], 'int32') as tf.Tensor2D;
      expect(() => captionCrossEntropy(logits, wrong)).toThrow(/targets.*\[2, 3\].*\[2, 4\]/);
      expect(() => captionCrossEntropy(logits, floats)).toThrow(/int32/);
      expect(() => captionCrossEntropy(logits, ok, 0, { labelSmoothing: 1 })).toThrow(/labelSmoothing/);
      tf.dispose([logits, wrong, floats, ok]);
    });
  });
}
