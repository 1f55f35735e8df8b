import { beforeAll, describe, expect, it } from 'vitest';
import * as tf from '@tensorflow/tfjs-core';
import { useBackend } from '@s2cpnet/core/testing';
import { Adam } from './optimizer';

beforeAll(async () => {
  await useBackend('wasm');
});

/** Adam with global-norm clipping in float64, written out from the paper's algorithm. */
function referenceAdam(w0: number[][], grads: number[][][], lr: number, clip: number) {
  const [b1, b2, eps] = [0.9, 0.999, 1e-8];
  const w = w0.map((x) => [...x]);
  const m = w0.map((x) => x.map(() => 0));
  const v = w0.map((x) => x.map(() => 0));
  grads.forEach((g, step) => {
    const t = step + 1;
    const norm = Math.sqrt(g.flat().reduce((a, x) => a + x * x, 0));
    const scale = clip > 0 && norm > clip ? clip / norm : 1;
    g.forEach((gw, k) =>
      gw.forEach((gi0, i) => {
        const gi = gi0 * scale;
        m[k]![i] = b1 * m[k]![i]! + (1 - b1) * gi;
        v[k]![i] = b2 * v[k]![i]! + (1 - b2) * gi * gi;
        const mHat = m[k]![i]! / (1 - b1 ** t);
        const vHat = v[k]![i]! / (1 - b2 ** t);
        w[k]![i] = w[k]![i]! - (lr * mHat) / (Math.sqrt(vHat) + eps);
      }),
    );
  });
  return w;
}

describe('Adam (moments in host memory)', () => {
  it('matches the float64 algorithm over several steps, with and without clipping, and leaves no tensors', () => {
    const w0 = [[0.5, -1, 2], [3, 0.1]];
    const grads = [[[0.1, -0.2, 0.3], [1, -1]], [[4, 5, -6], [0.5, 0.25]], [[-0.3, 0.2, 0.1], [0, 2]]];
    for (const clip of [0, 1]) {
      const variables = w0.map((w, k) => ({ path: `w${k}`, variable: tf.variable(tf.tensor1d(w)) }));
      const adam = new Adam({ learningRate: 0.01, clipNorm: clip });
      const before = tf.memory().numTensors;
      for (const g of grads) {
        const map = new Map(g.map((gw, k) => [`w${k}`, tf.tensor1d(gw)] as const));
        adam.apply(variables, map);
        tf.dispose([...map.values()]);
      }
      expect(tf.memory().numTensors).toBe(before);
      const expected = referenceAdam(w0, grads, 0.01, clip);
      variables.forEach(({ variable }, k) => {
        const got = Array.from(variable.dataSync());
        got.forEach((x, i) => expect(x).toBeCloseTo(expected[k]![i]!, 6));
      });
      tf.dispose(variables.map((v) => v.variable));
    }
  });

  it('saves and restores its state exactly (a resumed run continues identically)', () => {
    const make = () => ({ path: 'w', variable: tf.variable(tf.tensor1d([1, 2, 3, 4])) });
    const g = () => new Map([['w', tf.tensor1d([0.3, -0.1, 0.2, 0.4])]]);
    const a = new Adam({ learningRate: 0.1 });
    const va = make();
    for (let i = 0; i < 3; i++) a.apply([va], g());
    const b = new Adam({ learningRate: 0.5 });
    const vb = { path: 'w', variable: tf.variable(va.variable.clone()) };
    b.loadState(a.step, a.learningRate, new Map(a.stateArrays().map((s) => [s.name, { shape: s.shape, values: Float32Array.from(s.values) }])));
    a.apply([va], g());
    b.apply([vb], g());
    expect(Array.from(vb.variable.dataSync())).toEqual(Array.from(va.variable.dataSync()));
    expect(b.stateArrays().map((s) => s.name)).toEqual(['w#m', 'w#v']);
  });
});
