/**
 * Resize gradients as two matrix products, for GPU backends (webgpu), where a JS loop over the backend's memory is
 * not possible (no synchronous reads). A resize is separable: `y[b,p,q,c] = Σ_i Σ_j H[p,i] W[q,j] x[b,i,j,c]` with
 * interpolation matrices H [outH, inH] and W [outW, inW] built on the host from the same sampling rule as the JS
 * kernels in `resize.ts` (the forward kernels' rule). Its gradient is the transpose:
 * `dx[b,i,j,c] = Σ_p Σ_q H[p,i] W[q,j] dy[b,p,q,c]`, two `BatchMatMul`s with the transposed matrices, no loop.
 */
import type { KernelFunc, TensorInfo } from '@tensorflow/tfjs-core';
import { composeKernels, type KernelLookup } from './backend-access';
import { bilinearAxis, nearestAxis, resizeShapes } from './resize';

export const RESIZE_MATRIX_KERNELS_NEEDED = ['BatchMatMul', 'Reshape'] as const;

/** The transposed interpolation matrix [inSize, outSize] of one axis. */
export function transposedResizeMatrix(kind: 'bilinear' | 'nearest', inSize: number, outSize: number, alignCorners: boolean, halfPixelCenters: boolean): Float32Array {
  const m = new Float32Array(inSize * outSize);
  if (kind === 'nearest') {
    const index = nearestAxis(inSize, outSize, alignCorners, halfPixelCenters);
    for (let o = 0; o < outSize; o++) m[index[o]! * outSize + o] = 1;
    return m;
  }
  const { low, high, frac } = bilinearAxis(inSize, outSize, alignCorners, halfPixelCenters);
  for (let o = 0; o < outSize; o++) {
    m[low[o]! * outSize + o] += 1 - frac[o]!;
    m[high[o]! * outSize + o] += frac[o]!;
  }
  return m;
}

/** `ResizeBilinearGrad` / `ResizeNearestNeighborGrad` (inputs dy, images) composed of the backend's own kernels. */
export function makeResizeGradByMatrices(kind: 'bilinear' | 'nearest', lookup: KernelLookup): KernelFunc {
  const kernelName = kind === 'bilinear' ? 'ResizeBilinearGrad' : 'ResizeNearestNeighborGrad';
  return ({ inputs, backend, attrs = {} }) =>
    composeKernels(backend, lookup, kernelName, (seq) => {
      const dy = inputs['dy']!;
      const images = inputs['images']!;
      const alignCorners = attrs['alignCorners'] === true;
      const halfPixelCenters = attrs['halfPixelCenters'] === true;
      const { batch, inHeight, inWidth, channels, outHeight, outWidth } = resizeShapes(dy, images, kernelName);
      const constant = (values: Float32Array, shape: number[]): TensorInfo =>
        seq.own({ dataId: seq.memory.write(values, shape, 'float32'), shape, dtype: 'float32' });
      const rowsT = constant(transposedResizeMatrix(kind, inHeight, outHeight, alignCorners, halfPixelCenters), [1, inHeight, outHeight]);
      const colsT = constant(transposedResizeMatrix(kind, inWidth, outWidth, alignCorners, halfPixelCenters), [1, inWidth, outWidth]);
      const matMul = (a: TensorInfo, b: TensorInfo) => seq.run('BatchMatMul', { a, b }, { transposeA: false, transposeB: false });
      // rows: [1, inH, outH] · [B, outH, outW*C] -> [B, inH, outW*C]
      const byRows = matMul(rowsT, seq.reshape(dy, [batch, outHeight, outWidth * channels]));
      // columns: [1, inW, outW] · [B*inH, outW, C] -> [B*inH, inW, C]
      const byCols = matMul(colsT, seq.reshape(byRows, [batch * inHeight, outWidth, channels]));
      return seq.reshape(byCols, [batch, inHeight, inWidth, channels]);
    });
}
