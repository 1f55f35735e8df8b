/**
 * Forward values of the matMul kernels against a float64 reference, on every test backend: the batched products
 * that wasm runs in JS (`batchedMatMulJs`, 4×4 blocks with row and column remainders), a batch of rows times one
 * shared matrix (one XNNPACK product on wasm), transpose flags and broadcast batch dimensions.
 */
import * as tf from '@tensorflow/tfjs-core';
import { describe, expect, it } from 'vitest';
import { expectClose, expectNoLeaks, randomTensor, testBackends, useBackend } from '../testing/index';

interface MatMulShape {
  a: number[];
  b: number[];
  transposeA?: boolean;
  transposeB?: boolean;
}

const SHAPES: MatMulShape[] = [
  { a: [16, 8, 49, 32], b: [16, 8, 32, 49] }, // attention scores, lite preset
  { a: [3, 7, 5], b: [3, 5, 6] }, // remainders in rows and columns
  { a: [5, 4, 8], b: [5, 8, 4] }, // whole 4×4 blocks only
  { a: [2, 1, 3], b: [2, 3, 1] },
  { a: [2, 3, 9, 4], b: [2, 3, 6, 4], transposeB: true }, // QKᵀ with the flag
  { a: [2, 6, 9], b: [2, 6, 5], transposeA: true },
  { a: [4, 9, 6], b: [6, 7] }, // a batch of rows times one matrix
  { a: [2, 3, 5, 6], b: [1, 6, 7] },
  { a: [9, 6], b: [4, 6, 7] }, // one left matrix, a batch of right ones
  { a: [2, 1, 5, 4], b: [1, 3, 4, 6] }, // both sides broadcast
  { a: [3, 5, 4], b: [1, 4, 6] },
];

/** The product in float64, from the flat values, with numpy-style batch broadcasting. */
function referenceProduct(s: MatMulShape, a: Float32Array, b: Float32Array): { shape: number[]; values: Float64Array } {
  const ar = s.a.length;
  const br = s.b.length;
  const m = s.transposeA ? s.a[ar - 1]! : s.a[ar - 2]!;
  const k = s.transposeA ? s.a[ar - 2]! : s.a[ar - 1]!;
  const n = s.transposeB ? s.b[br - 2]! : s.b[br - 1]!;
  const aBatch = s.a.slice(0, -2);
  const bBatch = s.b.slice(0, -2);
  const rank = Math.max(aBatch.length, bBatch.length);
  const pad = (x: number[]) => [...Array<number>(rank - x.length).fill(1), ...x];
  const pa = pad(aBatch);
  const pb = pad(bBatch);
  const outBatch = pa.map((d, i) => Math.max(d, pb[i]!));
  const total = outBatch.reduce((x, y) => x * y, 1);
  const values = new Float64Array(total * m * n);
  const flat = (index: number[], dims: number[]) => index.reduce((acc, v, i) => acc * dims[i]! + (dims[i] === 1 ? 0 : v), 0);
  for (let t = 0; t < total; t++) {
    const index: number[] = [];
    let rest = t;
    for (let i = rank - 1; i >= 0; i--) {
      index.unshift(rest % outBatch[i]!);
      rest = Math.floor(rest / outBatch[i]!);
    }
    const ao = flat(index, pa) * m * k;
    const bo = flat(index, pb) * k * n;
    for (let i = 0; i < m; i++) {
      for (let j = 0; j < n; j++) {
        let sum = 0;
        for (let q = 0; q < k; q++) {
          const av = s.transposeA ? a[ao + q * m + i]! : a[ao + i * k + q]!;
          const bv = s.transposeB ? b[bo + j * k + q]! : b[bo + q * n + j]!;
          sum += av * bv;
        }
        values[(t * m + i) * n + j] = sum;
      }
    }
  }
  return { shape: [...outBatch, m, n], values };
}

describe('matMul kernels', () => {
  for (const backend of testBackends()) {
    SHAPES.forEach((s, i) => {
      const label = `[${s.a.join(',')}]${s.transposeA ? 'ᵀ' : ''}·[${s.b.join(',')}]${s.transposeB ? 'ᵀ' : ''}`;
      it(`${label} on ${backend} matches a float64 reference`, async () => {
        await useBackend(backend);
        const [actual, expected] = expectNoLeaks(() => {
          const a = randomTensor(s.a, 10 + i);
          const b = randomTensor(s.b, 50 + i);
          try {
            const y = tf.matMul(a, b, s.transposeA ?? false, s.transposeB ?? false);
            const reference = referenceProduct(s, a.dataSync() as Float32Array, b.dataSync() as Float32Array);
            expect(y.shape).toEqual(reference.shape);
            const values = y.dataSync().slice() as Float32Array;
            y.dispose();
            return [values, reference.values] as const;
          } finally {
            tf.dispose([a, b]);
          }
        });
        expectClose(actual, expected, { atol: 1e-5, rtol: 1e-5 });
      });
    });
  }
});
