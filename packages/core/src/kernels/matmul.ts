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
import { composeKernels, type KernelLookup } from './backend-access';

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
    if (!transposeA && !transposeB && !tileA && !tileB) return original(args);
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
