import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import * as tf from '@tensorflow/tfjs-core';
import { useBackend, expectNoLeaks, gradientCheck, testBackends } from '../testing/index';
import { registerS2CPNetKernels } from '../kernels/index';
import { Linear } from './linear';
import { LayerNorm } from './layer-norm';
import { FeedForward } from './feed-forward';
import { MultiHeadAttention } from './attention';
import { Embedding } from './embedding';
import { LearnedPositions2D, sinusoidalTable, sinusoidal2dTable } from './positional';
import { Conv2D, BatchNorm } from './conv';
import { addBias, layerNormRows, matmul, randomArray, softmaxRow, toMatrix, type Matrix } from './reference.test-util';

const weightsOf = (v: { read(): tf.Tensor }) => Array.from(v.read().dataSync());
const close = (a: ArrayLike<number>, b: ArrayLike<number>, tol = 1e-5) => {
  expect(a.length).toBe(b.length);
  let worst = 0;
  for (let i = 0; i < a.length; i++) worst = Math.max(worst, Math.abs(a[i]! - b[i]!) / Math.max(1, Math.abs(b[i]!)));
  expect(worst).toBeLessThan(tol);
};

for (const backend of testBackends()) {
  describe(`core nn blocks on ${backend}`, () => {
    beforeAll(async () => {
      await useBackend(backend);
      registerS2CPNetKernels();
    });
    afterAll(() => tf.disposeVariables());

    it('Linear matches x W + b in float64 on rank-3 input', () => {
      const layer = new Linear({ inputDim: 5, units: 3, seed: 7 });
      const xData = randomArray(2 * 4 * 5, 1);
      const x = tf.tensor3d(xData, [2, 4, 5]);
      const y = layer.forward(x);
      expect(y.shape).toEqual([2, 4, 3]);
      const w = toMatrix(weightsOf(layer.kernel), 5, 3);
      const ref = addBias(matmul(toMatrix(xData, 8, 5), w), weightsOf(layer.bias!));
      close(y.dataSync(), ref.flat());
      tf.dispose([x, y]);
    });

    it('LayerNorm matches the float64 formula', () => {
      const layer = new LayerNorm({ dim: 6 });
      const xData = randomArray(3 * 6, 2);
      const x = tf.tensor2d(xData, [3, 6]);
      const y = layer.forward(x);
      close(y.dataSync(), layerNormRows(toMatrix(xData, 3, 6), new Array(6).fill(1), new Array(6).fill(0), 1e-5).flat(), 1e-4);
      tf.dispose([x, y]);
    });

    it('MultiHeadAttention matches a float64 reference with key padding and causal masks', () => {
      const dim = 8;
      const heads = 2;
      const hd = dim / heads;
      const [b, tq, tk] = [2, 3, 4];
      const mha = new MultiHeadAttention({ dim, numHeads: heads, dropout: 0, seed: 11 });
      const qData = randomArray(b * tq * dim, 3);
      const kData = randomArray(b * tk * dim, 4);
      const mask = [1, 1, 1, 0, 1, 1, 0, 0];
      const q = tf.tensor3d(qData, [b, tq, dim]);
      const k = tf.tensor3d(kData, [b, tk, dim]);
      const m = tf.tensor2d(mask, [b, tk]);
      const { output, attention } = mha.forward(q, k, k, { keyPaddingMask: m, causal: true, pastLength: 1, returnAttention: true });
      const W = (l: Linear) => ({ w: toMatrix(weightsOf(l.kernel), dim, dim), bias: weightsOf(l.bias!) });
      const [Wq, Wk, Wv, Wo] = [mha.query, mha.key, mha.value, mha.outputProjection].map(W);
      const expected: number[] = [];
      const expectedAttention: number[] = [];
      for (let n = 0; n < b; n++) {
        const Q = addBias(matmul(toMatrix(qData.subarray(n * tq * dim), tq, dim), Wq!.w), Wq!.bias);
        const K = addBias(matmul(toMatrix(kData.subarray(n * tk * dim), tk, dim), Wk!.w), Wk!.bias);
        const V = addBias(matmul(toMatrix(kData.subarray(n * tk * dim), tk, dim), Wv!.w), Wv!.bias);
        const context: Matrix = Array.from({ length: tq }, () => new Array(dim).fill(0));
        for (let h = 0; h < heads; h++) {
          for (let i = 0; i < tq; i++) {
            const scores = Array.from({ length: tk }, (_, j) => {
              let s = 0;
              for (let c = 0; c < hd; c++) s += Q[i]![h * hd + c]! * K[j]![h * hd + c]!;
              s /= Math.sqrt(hd);
              const allowed = mask[n * tk + j] === 1 && j <= 1 + i;
              return allowed ? s : -1e9;
            });
            const p = softmaxRow(scores);
            expectedAttention.push(...p);
            for (let c = 0; c < hd; c++) context[i]![h * hd + c] = p.reduce((s, pj, j) => s + pj * V[j]![h * hd + c]!, 0);
          }
        }
        expected.push(...addBias(matmul(context, Wo!.w), Wo!.bias).flat());
      }
      close(output.dataSync(), expected);
      // attention is [B, heads, Tq, Tk]; the reference was pushed in that order
      close(attention!.dataSync(), expectedAttention);
      tf.dispose([q, k, m, output, attention!]);
    });

    it('incremental decoding with a key/value cache equals full causal attention', () => {
      const mha = new MultiHeadAttention({ dim: 8, numHeads: 4, dropout: 0, seed: 5 });
      const x = tf.tensor3d(randomArray(2 * 5 * 8, 9), [2, 5, 8]);
      const full = mha.forward(x, x, x, { causal: true }).output;
      let cache: ReturnType<MultiHeadAttention['appendKeyValue']> | null = null;
      const steps: tf.Tensor[] = [];
      for (let t = 0; t < 5; t++) {
        const xt = tf.slice(x, [0, t, 0], [2, 1, 8]) as tf.Tensor3D;
        const next = mha.appendKeyValue(cache, xt);
        if (cache) tf.dispose([cache.keys, cache.values]);
        cache = next;
        steps.push(mha.attend(xt, cache, { causal: true }).output);
        xt.dispose();
      }
      const stepped = tf.concat(steps, 1);
      close(stepped.dataSync(), full.dataSync());
      tf.dispose([x, full, stepped, ...steps, cache!.keys, cache!.values]);
    });

    it('attention, FFN, norms and embeddings do not leak tensors once built', () => {
      const mha = new MultiHeadAttention({ dim: 8, numHeads: 2, seed: 1 });
      const ffn = new FeedForward({ dim: 8, hiddenDim: 16, seed: 2 });
      const emb = new Embedding({ vocabSize: 10, dim: 8, seed: 3 });
      const x = tf.tensor3d(randomArray(16, 4), [1, 2, 8]);
      const ids = tf.tensor2d([1, 2], [1, 2], 'int32');
      const run = () => {
        const a = mha.forward(x, x, x, { training: true, dropoutSeed: 3 }).output;
        const f = ffn.forward(a, { training: true, dropoutSeed: 3 });
        const e = emb.forward(ids);
        tf.dispose([a, f, e]);
      };
      run(); // builds weights
      expectNoLeaks(run);
      tf.dispose([x, ids]);
    });

    it('gradients of a tiny attention + FFN + LayerNorm block match finite differences', () => {
      const mha = new MultiHeadAttention({ dim: 4, numHeads: 2, dropout: 0, seed: 21 });
      const ffn = new FeedForward({ dim: 4, hiddenDim: 6, dropout: 0, seed: 22 });
      const ln = new LayerNorm({ dim: 4 });
      const r = tf.tensor3d(randomArray(2 * 3 * 4, 23), [2, 3, 4]);
      const loss = (x: tf.Tensor) => {
        const x3 = x as tf.Tensor3D;
        const a = ln.forward(tf.add(x3, mha.forward(x3, x3, x3, { causal: true }).output));
        return tf.sum(tf.mul(ffn.forward(a), r)) as tf.Scalar;
      };
      const x = tf.tensor3d(randomArray(2 * 3 * 4, 24), [2, 3, 4]);
      const result = gradientCheck(loss, [x]);
      expect(result.maxRelativeError).toBeLessThan(2e-2);
      tf.dispose([x, r]);
    });

    it('learned 2-D positions concatenate a row and a column table per cell', () => {
      const pos = new LearnedPositions2D({ grid: 3, dim: 4, seed: 1 });
      const table = pos.forward().arraySync() as number[][];
      const rows = toMatrix(weightsOf(pos.rows), 3, 2);
      const cols = toMatrix(weightsOf(pos.columns), 3, 2);
      for (let r = 0; r < 3; r++) for (let c = 0; c < 3; c++) close(table[r * 3 + c]!, [...rows[r]!, ...cols[c]!]);
    });

    it('Conv2D (dense and depthwise) output shapes follow TF padding rules', () => {
      const conv = new Conv2D({ inputChannels: 3, filters: 5, kernelSize: 3, strides: 2, padding: 'same', seed: 1 });
      const dw = new Conv2D({ inputChannels: 3, filters: 3, kernelSize: 3, depthwise: true, seed: 2 });
      const x = tf.tensor4d(randomArray(1 * 7 * 7 * 3, 5), [1, 7, 7, 3]);
      const y = conv.forward(x);
      const z = dw.forward(x);
      expect(y.shape).toEqual([1, 4, 4, 5]);
      expect(conv.computeOutputShape([1, 7, 7, 3])).toEqual([1, 4, 4, 5]);
      expect(z.shape).toEqual([1, 7, 7, 3]);
      expect(conv.countParams()).toBe(3 * 3 * 3 * 5 + 5);
      tf.dispose([x, y, z]);
    });

    it('BatchNorm uses batch statistics in training and moving averages otherwise; frozen means inference', () => {
      const bn = new BatchNorm({ channels: 2, momentum: 0.5 });
      const x = tf.tensor2d([1, 10, 3, 20], [2, 2]);
      const train = bn.forward(x, { training: true });
      close(train.dataSync(), [-1, -1, 1, 1], 1e-3);
      close(weightsOf(bn.movingMean), [1, 7.5]);
      bn.trainable = false;
      const frozen = bn.forward(x, { training: true });
      const infer = bn.forward(x, { training: false });
      close(frozen.dataSync(), infer.dataSync());
      expect(bn.trainableWeights).toHaveLength(0);
      tf.dispose([x, train, frozen, infer]);
    });
  });
}

describe('positional tables', () => {
  it('sinusoidal table follows sin/cos of pos / 10000^(2i/d)', () => {
    const t = sinusoidalTable(3, 4);
    close(Array.from(t.subarray(8, 12)), [Math.sin(2), Math.cos(2), Math.sin(2 / 100), Math.cos(2 / 100)]);
  });
  it('2-D sinusoidal table encodes row then column', () => {
    const t = sinusoidal2dTable(2, 4);
    const row1 = sinusoidalTable(2, 2);
    close(Array.from(t.subarray(4, 8)), [row1[0]!, row1[1]!, row1[2]!, row1[3]!]);
  });
});
