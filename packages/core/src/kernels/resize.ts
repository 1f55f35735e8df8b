/**
 * Resize gradients written as the exact transpose of the forward sampling rule (the rule of the cpu backend's
 * forward kernels, which wasm's forward kernels agree with).
 *
 * Stock tfjs 4.22 is wrong in four places:
 * - `ResizeBilinearGrad` ignores `halfPixelCenters` on every backend (relative error 0.62);
 * - `ResizeBilinearGrad` on cpu returns a gradient with height and width swapped when they differ (shape error);
 * - `ResizeNearestNeighborGrad` on cpu is wrong for batch > 1;
 * - `ResizeNearestNeighborGrad` with `halfPixelCenters` is wrong on both backends at non-integer scales.
 *
 * Each output cell adds its gradient to the input cells it was interpolated from, so the result is correct by
 * construction for every batch size and every `alignCorners` / `halfPixelCenters` combination.
 */
import type { KernelFunc, TensorInfo } from '@tensorflow/tfjs-core';
import { allocateOutput, asBackendMemory, readValues } from './backend-access';

interface ResizeAxis {
  /** First source index of each output index. */
  low: Int32Array;
  /** Second source index (bilinear only; equal to `low` at the borders). */
  high: Int32Array;
  /** Weight of `high` (bilinear only). */
  frac: Float64Array;
}

function sizeRatio(inSize: number, outSize: number, alignCorners: boolean): number {
  const effectiveIn = alignCorners && outSize > 1 ? inSize - 1 : inSize;
  const effectiveOut = alignCorners && outSize > 1 ? outSize - 1 : outSize;
  return effectiveIn / effectiveOut;
}

export function bilinearAxis(inSize: number, outSize: number, alignCorners: boolean, halfPixelCenters: boolean): ResizeAxis {
  const ratio = sizeRatio(inSize, outSize, alignCorners);
  const low = new Int32Array(outSize);
  const high = new Int32Array(outSize);
  const frac = new Float64Array(outSize);
  for (let o = 0; o < outSize; o++) {
    const source = halfPixelCenters ? ratio * (o + 0.5) - 0.5 : ratio * o;
    const floor = Math.max(0, Math.floor(source));
    low[o] = floor;
    high[o] = Math.min(inSize - 1, Math.ceil(source));
    frac[o] = source - floor;
  }
  return { low, high, frac };
}

export function nearestAxis(inSize: number, outSize: number, alignCorners: boolean, halfPixelCenters: boolean): Int32Array {
  const ratio = sizeRatio(inSize, outSize, alignCorners);
  const index = new Int32Array(outSize);
  for (let o = 0; o < outSize; o++) {
    const source = halfPixelCenters ? ratio * (o + 0.5) : ratio * o;
    let nearest = Math.min(inSize - 1, alignCorners ? Math.round(source) : Math.floor(source));
    if (halfPixelCenters) nearest = Math.max(0, nearest);
    index[o] = nearest;
  }
  return index;
}

export function resizeShapes(dy: TensorInfo, images: TensorInfo, kernelName: string) {
  if (dy.shape.length !== 4 || images.shape.length !== 4 || dy.shape[0] !== images.shape[0] || dy.shape[3] !== images.shape[3]) {
    throw new Error(`${kernelName}: dy [${dy.shape.join(',')}] does not match images [${images.shape.join(',')}]`);
  }
  const [batch, inHeight, inWidth, channels] = images.shape as [number, number, number, number];
  return { batch, inHeight, inWidth, channels, outHeight: dy.shape[1]!, outWidth: dy.shape[2]! };
}

/** inputs dy, images; attrs alignCorners, halfPixelCenters. */
export const resizeBilinearGradKernel: KernelFunc = ({ inputs, backend, attrs = {} }) => {
  const memory = asBackendMemory(backend, 'ResizeBilinearGrad');
  const dy = inputs['dy']!;
  const images = inputs['images']!;
  const alignCorners = attrs['alignCorners'] === true;
  const halfPixelCenters = attrs['halfPixelCenters'] === true;
  const { batch, inHeight, inWidth, channels, outHeight, outWidth } = resizeShapes(dy, images, 'ResizeBilinearGrad');
  const rows = bilinearAxis(inHeight, outHeight, alignCorners, halfPixelCenters);
  const cols = bilinearAxis(inWidth, outWidth, alignCorners, halfPixelCenters);

  const { info: out, values: dx } = allocateOutput(memory, images.shape.slice(), 'float32');
  const dyv = readValues(memory, dy);
  for (let b = 0; b < batch; b++) {
    for (let oy = 0; oy < outHeight; oy++) {
      const topRow = (b * inHeight + rows.low[oy]!) * inWidth;
      const bottomRow = (b * inHeight + rows.high[oy]!) * inWidth;
      const fy = rows.frac[oy]!;
      for (let ox = 0; ox < outWidth; ox++) {
        const fx = cols.frac[ox]!;
        const wTopLeft = (1 - fy) * (1 - fx);
        const wTopRight = (1 - fy) * fx;
        const wBottomLeft = fy * (1 - fx);
        const wBottomRight = fy * fx;
        const topLeft = (topRow + cols.low[ox]!) * channels;
        const topRight = (topRow + cols.high[ox]!) * channels;
        const bottomLeft = (bottomRow + cols.low[ox]!) * channels;
        const bottomRight = (bottomRow + cols.high[ox]!) * channels;
        const dyBase = ((b * outHeight + oy) * outWidth + ox) * channels;
        for (let c = 0; c < channels; c++) {
          const g = dyv[dyBase + c]!;
          dx[topLeft + c] += g * wTopLeft;
          dx[topRight + c] += g * wTopRight;
          dx[bottomLeft + c] += g * wBottomLeft;
          dx[bottomRight + c] += g * wBottomRight;
        }
      }
    }
  }
  return out;
};

/** inputs dy, images; attrs alignCorners, halfPixelCenters. */
export const resizeNearestNeighborGradKernel: KernelFunc = ({ inputs, backend, attrs = {} }) => {
  const memory = asBackendMemory(backend, 'ResizeNearestNeighborGrad');
  const dy = inputs['dy']!;
  const images = inputs['images']!;
  const alignCorners = attrs['alignCorners'] === true;
  const halfPixelCenters = attrs['halfPixelCenters'] === true;
  const { batch, inHeight, inWidth, channels, outHeight, outWidth } = resizeShapes(dy, images, 'ResizeNearestNeighborGrad');
  const rows = nearestAxis(inHeight, outHeight, alignCorners, halfPixelCenters);
  const cols = nearestAxis(inWidth, outWidth, alignCorners, halfPixelCenters);

  const { info: out, values: dx } = allocateOutput(memory, images.shape.slice(), 'float32');
  const dyv = readValues(memory, dy);
  for (let b = 0; b < batch; b++) {
    for (let oy = 0; oy < outHeight; oy++) {
      const rowBase = (b * inHeight + rows[oy]!) * inWidth;
      for (let ox = 0; ox < outWidth; ox++) {
        const target = (rowBase + cols[ox]!) * channels;
        const dyBase = ((b * outHeight + oy) * outWidth + ox) * channels;
        for (let c = 0; c < channels; c++) dx[target + c] += dyv[dyBase + c]!;
      }
    }
  }
  return out;
};
