/**
 * Matrix products without transpose flags.
 *
 * On wasm 4.22, `BatchMatMul` / `_FusedMatMul` with `transposeA` or `transposeB` leave the fast path: on
 * [640×512]·[512×2048], transposeB is ~12× and transposeA ~40× slower than the plain product, while an explicit
 * transpose costs little. Every stock matMul gradient, `tf.fused.matMul`'s custom gradient (tfjs-layers `Dense`) and
 * attention's QKᵀ use the flags. Two fixes:
 *
 * - a kernel wrapper (wasm): a flagged product becomes `Transpose` + the plain kernel. It covers every caller,
 *   including custom gradients that a gradient override cannot reach. The wrapper (cpu and wasm) also fixes
 *   the stock forward pass when both operands broadcast their batch dimensions;
 * - a `BatchMatMul` gradient override (all backends) written with explicit transposes, which also fixes the stock
 *   gradient's shape error when the batch dimensions broadcast (for example [B,T,d]·[d,e] or [2,1,m,k]·[1,3,k,n]).
 */
import * as tf from '@tensorflow/tfjs-core';
import type { GradConfig, KernelFunc, Tensor, TensorInfo } from '@tensorflow/tfjs-core';
import { allocateOutput, type BackendMemory, composeKernels, type KernelLookup, readValues } from './backend-access';

function swapLastTwo(rank: number): number[] {
  const perm = Array.from({ length: rank }, (_, i) => i);
  perm[rank - 2] = rank - 1;
  perm[rank - 1] = rank - 2;
  return perm;
}

/**
 * True when the batch-flattened kernel computes `operand` broadcast to `outBatch` correctly: the kernel reads batch
 * `i mod size(operand batch)`, which is right only when the operand's batch shape (without leading 1s) is a suffix of
 * the output batch shape. [2,3]·[3] and [2,3]·[1,3] are fine; [2,1]·[1,3] is not.
 */
function flattenedBroadcastIsExact(batch: readonly number[], outBatch: readonly number[]): boolean {
  let first = 0;
  while (first < batch.length && batch[first] === 1) first++;
  const core = batch.slice(first);
  if (core.length === 0) return true;
  const tail = outBatch.slice(outBatch.length - core.length);
  return core.every((d, i) => d === tail[i]);
}

function broadcastBatch(a: readonly number[], b: readonly number[]): number[] {
  const rank = Math.max(a.length, b.length);
  const out: number[] = [];
  for (let i = 0; i < rank; i++) {
    const da = a[a.length - rank + i] ?? 1;
    const db = b[b.length - rank + i] ?? 1;
    if (da !== db && da !== 1 && db !== 1) throw new Error(`matMul: batch dimensions [${a.join(',')}] and [${b.join(',')}] do not broadcast`);
    out.push(Math.max(da, db));
  }
  return out;
}

function sizeOf(shape: readonly number[]): number {
  let n = 1;
  for (const d of shape) n *= d;
  return n;
}

/**
 * How a wasm `BatchMatMul` with more than one matrix in its batch runs. wasm 4.22 sends only a single product
 * (batch 1, no flags) to XNNPACK; every batched product goes to a scalar loop at ~1.1 GFLOP/s, whatever the sizes
 * (the per-head attention products, [B·heads, T, d]). So:
 * - `rows`: a batch of left operands times one shared right operand ([B,T,d]·[d,e]) is one [B·T, d]·[d, e] product;
 * - `js`: other batched float32 products run in a register-blocked JS loop (`batchedMatMulJs`, ~4.5 GFLOP/s);
 * - `stock`: everything else (single products, `_FusedMatMul` with its bias/activation, the cpu backend).
 */
function batchedPlan(
  kernelName: string,
  wasm: boolean,
  a: TensorInfo,
  b: TensorInfo,
  outBatch: readonly number[],
): 'stock' | 'rows' | 'js' {
  if (!wasm || kernelName !== 'BatchMatMul' || a.dtype !== 'float32' || b.dtype !== 'float32') return 'stock';
  if (sizeOf(outBatch) <= 1) return 'stock';
  const aBatch = sizeOf(a.shape.slice(0, -2));
  const bBatch = sizeOf(b.shape.slice(0, -2));
  if (bBatch === 1 && aBatch === sizeOf(outBatch)) return 'rows';
  return 'js';
}

/**
 * C[i] = A[i mod batchA] · B[i mod batchB] for plain (untransposed) float32 operands [.., m, k] and [.., k, n], in a
 * 4×4 register-blocked loop (accumulating in float64) written straight into the backend's memory. The caller has
 * tiled operands whose batch would not broadcast correctly this way (`flattenedBroadcastIsExact`).
 */
export function batchedMatMulJs(memory: BackendMemory, a: TensorInfo, b: TensorInfo, outBatch: readonly number[]): TensorInfo {
  const m = a.shape[a.shape.length - 2]!;
  const k = a.shape[a.shape.length - 1]!;
  const n = b.shape[b.shape.length - 1]!;
  if (b.shape[b.shape.length - 2] !== k) throw new Error(`matMul: inner dimensions ${k} and ${b.shape[b.shape.length - 2]} do not match`);
  const batch = sizeOf(outBatch);
  const aBatch = sizeOf(a.shape.slice(0, -2));
  const bBatch = sizeOf(b.shape.slice(0, -2));
  // Allocate first: on wasm a new allocation can move the heap and detach earlier views.
  const { info, values: C } = allocateOutput(memory, [...outBatch, m, n], 'float32', false);
  const A = readValues(memory, a) as Float32Array;
  const B = readValues(memory, b) as Float32Array;
  for (let bi = 0; bi < batch; bi++) {
    const ao = (bi % aBatch) * m * k;
    const bo = (bi % bBatch) * k * n;
    const co = bi * m * n;
    let i = 0;
    for (; i + 4 <= m; i += 4) {
      const r0 = ao + i * k;
      const r1 = r0 + k;
      const r2 = r1 + k;
      const r3 = r2 + k;
      let j = 0;
      for (; j + 4 <= n; j += 4) {
        let c00 = 0, c01 = 0, c02 = 0, c03 = 0, c10 = 0, c11 = 0, c12 = 0, c13 = 0;
        let c20 = 0, c21 = 0, c22 = 0, c23 = 0, c30 = 0, c31 = 0, c32 = 0, c33 = 0;
        let p = bo + j;
        for (let q = 0; q < k; q++, p += n) {
          const b0 = B[p]!, b1 = B[p + 1]!, b2 = B[p + 2]!, b3 = B[p + 3]!;
          const a0 = A[r0 + q]!, a1 = A[r1 + q]!, a2 = A[r2 + q]!, a3 = A[r3 + q]!;
          c00 += a0 * b0; c01 += a0 * b1; c02 += a0 * b2; c03 += a0 * b3;
          c10 += a1 * b0; c11 += a1 * b1; c12 += a1 * b2; c13 += a1 * b3;
          c20 += a2 * b0; c21 += a2 * b1; c22 += a2 * b2; c23 += a2 * b3;
          c30 += a3 * b0; c31 += a3 * b1; c32 += a3 * b2; c33 += a3 * b3;
        }
        let o = co + i * n + j;
        C[o] = c00; C[o + 1] = c01; C[o + 2] = c02; C[o + 3] = c03; o += n;
        C[o] = c10; C[o + 1] = c11; C[o + 2] = c12; C[o + 3] = c13; o += n;
        C[o] = c20; C[o + 1] = c21; C[o + 2] = c22; C[o + 3] = c23; o += n;
        C[o] = c30; C[o + 1] = c31; C[o + 2] = c32; C[o + 3] = c33;
      }
      for (; j < n; j++) {
        let c0 = 0, c1 = 0, c2 = 0, c3 = 0;
        let p = bo + j;
        for (let q = 0; q < k; q++, p += n) {
          const bv = B[p]!;
          c0 += A[r0 + q]! * bv;
          c1 += A[r1 + q]! * bv;
          c2 += A[r2 + q]! * bv;
          c3 += A[r3 + q]! * bv;
        }
        const o = co + i * n + j;
        C[o] = c0;
        C[o + n] = c1;
        C[o + 2 * n] = c2;
        C[o + 3 * n] = c3;
      }
    }
    for (; i < m; i++) {
      const r0 = ao + i * k;
      for (let j = 0; j < n; j++) {
        let c = 0;
        let p = bo + j;
        for (let q = 0; q < k; q++, p += n) c += A[r0 + q]! * B[p]!;
        C[co + i * n + j] = c;
      }
    }
  }
  return info;
}

/**
 * Wraps a matMul-like kernel (`BatchMatMul`, `_FusedMatMul`):
 * - with `explicitTranspose`, a flagged product runs as `Transpose` + the plain kernel (wasm's flagged path is slow);
 * - operands whose batch dimensions the kernel would broadcast wrongly (both sides broadcasting, e.g.
 *   [2,1,m,k]·[1,3,k,n], which stock tfjs computes wrongly on cpu and wasm) are tiled to the output batch first.
 */
export function makeMatMulKernel(
  kernelName: string,
  original: KernelFunc,
  lookup: KernelLookup,
  explicitTranspose: boolean,
): KernelFunc {
  return (args) => {
    const attrs = args.attrs ?? {};
    const a = args.inputs['a']!;
    const b = args.inputs['b']!;
    const transposeA = explicitTranspose && attrs['transposeA'] === true;
    const transposeB = explicitTranspose && attrs['transposeB'] === true;
    const aBatch = a.shape.slice(0, -2);
    const bBatch = b.shape.slice(0, -2);
    const outBatch = broadcastBatch(aBatch, bBatch);
    const tileA = !flattenedBroadcastIsExact(aBatch, outBatch);
    const tileB = !flattenedBroadcastIsExact(bBatch, outBatch);
    const batched = batchedPlan(kernelName, explicitTranspose, a, b, outBatch);
    if (!transposeA && !transposeB && !tileA && !tileB && batched === 'stock') return original(args);
    return composeKernels(args.backend, lookup, kernelName, (seq) => {
      const prepare = (x: TensorInfo, transpose: boolean, tile: boolean) => {
        let out = transpose ? seq.transpose(x, swapLastTwo(x.shape.length)) : x;
        if (tile) {
          const batch = out.shape.slice(0, -2);
          const padded = [...Array<number>(outBatch.length - batch.length).fill(1), ...batch];
          const full = seq.reshape(out, [...padded, ...out.shape.slice(-2)]);
          out = seq.run('Tile', { x: full }, { reps: [...outBatch.map((d, i) => d / padded[i]!), 1, 1] });
        }
        return out;
      };
      const inputs = { ...args.inputs, a: prepare(a, transposeA, tileA), b: prepare(b, transposeB, tileB) };
      if (batched === 'rows') {
        // [.., m, k]·[k, n] with one shared right operand: all rows of a in one (XNNPACK) product.
        const a2 = inputs.a!;
        const k = a2.shape[a2.shape.length - 1]!;
        const rows = seq.reshape(a2, [1, sizeOf(a2.shape) / k, k]);
        const b3 = seq.reshape(inputs.b!, [1, ...inputs.b!.shape.slice(-2)]);
        const product = original({ inputs: { a: rows, b: b3 }, backend: args.backend, attrs: { ...attrs, transposeA: false, transposeB: false } });
        if (Array.isArray(product)) throw new Error(`${kernelName}: expected one output`);
        const out = seq.own(product as TensorInfo);
        return seq.reshape(out, [...outBatch, a2.shape[a2.shape.length - 2]!, inputs.b!.shape[inputs.b!.shape.length - 1]!]);
      }
      if (batched === 'js') return seq.own(batchedMatMulJs(seq.memory, inputs.a!, inputs.b!, outBatch));
      const newAttrs = explicitTranspose ? { ...attrs, transposeA: false, transposeB: false } : attrs;
      const out = original({ inputs, backend: args.backend, attrs: newAttrs });
      if (Array.isArray(out)) throw new Error(`${kernelName}: expected one output`);
      return out as TensorInfo;
    });
  };
}

function transposeLastTwo(x: Tensor): Tensor {
  return tf.transpose(x, swapLastTwo(x.rank));
}

/** Sums a broadcast gradient back to `shape` (leading axes that were added, and axes that were 1). */
export function reduceToShape(grad: Tensor, shape: readonly number[]): Tensor {
  if (grad.shape.length === shape.length && grad.shape.every((d, i) => d === shape[i])) return grad;
  const lead = grad.rank - shape.length;
  const axes: number[] = [];
  for (let i = 0; i < grad.rank; i++) {
    if (i < lead) axes.push(i);
    else if (shape[i - lead] === 1 && grad.shape[i] !== 1) axes.push(i);
  }
  const summed = axes.length > 0 ? tf.sum(grad, axes) : grad;
  return tf.reshape(summed, shape as number[]);
}

export const batchMatMulGradConfig: GradConfig = {
  kernelName: 'BatchMatMul',
  inputsToSave: ['a', 'b'],
  gradFunc: (dy, saved, attrs) => {
    const [a, b] = saved as [Tensor, Tensor];
    const g = dy as Tensor;
    const transposeA = attrs['transposeA'] === true;
    const transposeB = attrs['transposeB'] === true;
    // Logical operands A [.., m, k] and B [.., k, n] with y = A·B; `a`, `b` are stored transposed when flagged.
    const aLogical = () => (transposeA ? transposeLastTwo(a) : a);
    const aLogicalT = () => (transposeA ? a : transposeLastTwo(a));
    const bLogical = () => (transposeB ? transposeLastTwo(b) : b);
    const bLogicalT = () => (transposeB ? b : transposeLastTwo(b));
    return {
      a: () => {
        // dA = dy·Bᵀ, stored as a; when a is stored transposed, da = B·dyᵀ.
        const grad = transposeA ? tf.matMul(bLogical(), transposeLastTwo(g)) : tf.matMul(g, bLogicalT());
        return reduceToShape(grad, a.shape);
      },
      b: () => {
        // dB = Aᵀ·dy; when b is stored transposed, db = dyᵀ·A.
        if (b.rank === 2 && g.rank > 2) {
          // A batch of rows times one matrix (a linear layer on a sequence): one large product, no batch sum.
          const rows = g.size / g.shape[g.rank - 1]!;
          const k = a.shape[transposeA ? a.rank - 2 : a.rank - 1]!;
          const n = g.shape[g.rank - 1]!;
          const aRows = tf.reshape(aLogical(), [rows, k]);
          const gRows = tf.reshape(g, [rows, n]);
          return transposeB ? tf.matMul(tf.transpose(gRows), aRows) : tf.matMul(tf.transpose(aRows), gRows);
        }
        const grad = transposeB ? tf.matMul(transposeLastTwo(g), aLogical()) : tf.matMul(aLogicalT(), g);
        return reduceToShape(grad, b.shape);
      },
    };
  },
};
