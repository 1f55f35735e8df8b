import { beforeAll, describe, expect, it } from 'vitest';
import * as tf from '@tensorflow/tfjs-core';
import { useBackend } from '@s2cpnet/core/testing';
import { Adam } from './optimizer';

beforeAll(async () => {
  await useBackend('wasm');
});

/** Adam with global-norm clipping in float64, written out from the paper's algorithm. */
function referenceAdam(w0: number[][], grads: number[][][], lr: number, clip: number, lrScales: number[] = w0.map(() => 1)) {
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
        w[k]![i] = w[k]![i]! - (lr * lrScales[k]! * mHat) / (Math.sqrt(vHat) + eps);
      }),
    );
  });
  return w;
}

for (const moments of ['host', 'device'] as const) {
  describe(`Adam (moments in ${moments === 'host' ? 'host memory' : 'backend tensors'})`, () => {
    it('matches the float64 algorithm over several steps, with and without clipping, and leaves no tensors', async () => {
      const w0 = [[0.5, -1, 2], [3, 0.1]];
      const grads = [[[0.1, -0.2, 0.3], [1, -1]], [[4, 5, -6], [0.5, 0.25]], [[-0.3, 0.2, 0.1], [0, 2]]];
      for (const clip of [0, 1]) {
        const variables = w0.map((w, k) => ({ path: `w${k}`, variable: tf.variable(tf.tensor1d(w)) }));
        const adam = new Adam({ learningRate: 0.01, clipNorm: clip, moments });
        expect(adam.momentPlacement).toBe(moments);
        const before = tf.memory().numTensors;
        const norms: number[] = [];
        for (const g of grads) {
          const map = new Map(g.map((gw, k) => [`w${k}`, tf.tensor1d(gw)] as const));
          norms.push(await adam.apply(variables, map));
          tf.dispose([...map.values()]);
        }
        // host moments take no backend memory; device moments take two tensors per weight
        expect(tf.memory().numTensors).toBe(before + (moments === 'device' ? 2 * w0.length : 0));
        norms.forEach((n, i) => expect(n).toBeCloseTo(Math.sqrt(grads[i]!.flat().reduce((a, x) => a + x * x, 0)), 5));
        const expected = referenceAdam(w0, grads, 0.01, clip);
        for (const [k, { variable }] of variables.entries()) {
          const got = Array.from(await variable.data());
          got.forEach((x, i) => expect(x).toBeCloseTo(expected[k]![i]!, 6));
        }
        adam.dispose();
        expect(tf.memory().numTensors).toBe(before);
        tf.dispose(variables.map((v) => v.variable));
      }
    });

    it('gives weight groups their own learning rate by path prefix (learningRateScales), clipping on the global norm', async () => {
      const w0 = [[0.5, -1, 2], [3, 0.1], [1, 1]];
      const grads = [[[0.1, -0.2, 0.3], [1, -1], [0.2, 0.2]], [[4, 5, -6], [0.5, 0.25], [-1, 3]]];
      const paths = ['encoder/block13/w', 'decoder/w', 'encoder/block12/w'];
      const variables = w0.map((w, k) => ({ path: paths[k]!, variable: tf.variable(tf.tensor1d(w)) }));
      const adam = new Adam({ learningRate: 0.01, clipNorm: 1, moments, learningRateScales: [{ prefix: 'encoder/block13/', scale: 0.25 }, { prefix: 'encoder/', scale: 0.1 }] });
      expect([adam.scaleOf(paths[0]!), adam.scaleOf(paths[1]!), adam.scaleOf(paths[2]!)]).toEqual([0.25, 1, 0.1]);
      for (const g of grads) {
        const map = new Map(g.map((gw, k) => [paths[k]!, tf.tensor1d(gw)] as const));
        await adam.apply(variables, map);
        tf.dispose([...map.values()]);
      }
      const expected = referenceAdam(w0, grads, 0.01, 1, [0.25, 1, 0.1]);
      for (const [k, { variable }] of variables.entries()) {
        Array.from(await variable.data()).forEach((x, i) => expect(x).toBeCloseTo(expected[k]![i]!, 6));
      }
      adam.dispose();
      tf.dispose(variables.map((v) => v.variable));
      expect(() => new Adam({ learningRate: 0.01, learningRateScales: [{ prefix: 'encoder/', scale: -1 }] })).toThrow(/learningRateScales/);
    });

    it('saves and restores its state exactly (a resumed run continues identically)', async () => {
      const make = () => ({ path: 'w', variable: tf.variable(tf.tensor1d([1, 2, 3, 4])) });
      const g = () => new Map([['w', tf.tensor1d([0.3, -0.1, 0.2, 0.4])]]);
      const a = new Adam({ learningRate: 0.1, moments });
      const va = make();
      for (let i = 0; i < 3; i++) await a.apply([va], g());
      // restored into the other placement too: checkpoints do not depend on where the moments lived
      const b = new Adam({ learningRate: 0.5, moments: moments === 'host' ? 'device' : 'host' });
      const vb = { path: 'w', variable: tf.variable(va.variable.clone()) };
      const saved = await a.stateArrays();
      await b.loadState(a.step, a.learningRate, new Map(saved.map((s) => [s.name, { shape: s.shape, values: Float32Array.from(s.values) }])));
      await a.apply([va], g());
      await b.apply([vb], g());
      const [wa, wb] = [Array.from(await va.variable.data()), Array.from(await vb.variable.data())];
      wb.forEach((x, i) => expect(x).toBeCloseTo(wa[i]!, 6));
      expect((await b.stateArrays()).map((s) => s.name)).toEqual(['w#m', 'w#v']);
      a.dispose();
      b.dispose();
    });
  });
}
