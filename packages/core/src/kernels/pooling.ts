/**
 * Pooling gradients that stock tfjs 4.22 gets wrong.
 *
 * - `MaxPoolGrad` on wasm: when every value in a window is negative, the window's gradient lands on the wrong cell
 *   or is lost. The replacement routes each output's gradient to the first maximum of its window (padding excluded),
 *   which is what the cpu backend and TensorFlow do.
 * - `AvgPool` gradient, every backend: the forward pass divides each window by the number of real (non-padding)
 *   cells, but the stock gradient divides by the full window area. With 'same' padding the border cells get too
 *   little gradient (3×3 input, 3×3 window: corner 0.444 instead of 0.694). The corrected gradient rescales dy per
 *   output cell by area/count before the stock `AvgPoolGrad` kernel spreads it, so it stays a native kernel.
 */
import * as tf from '@tensorflow/tfjs-core';
import type { GradConfig, KernelFunc, NamedAttrMap, Tensor } from '@tensorflow/tfjs-core';
import { allocateOutput, asBackendMemory, backendUtil, readValues, type PadAttr, type RoundingAttr } from './backend-access';

function poolInfo(shape: readonly number[], attrs: NamedAttrMap, kernelName: string) {
  if (shape.length !== 4) throw new Error(`${kernelName}: expected a rank-4 NHWC input, found [${shape.join(',')}]`);
  return backendUtil.computePool2DInfo(
    shape as [number, number, number, number],
    attrs['filterSize'] as number | [number, number],
    attrs['strides'] as number | [number, number],
    1,
    attrs['pad'] as PadAttr,
    attrs['dimRoundingMode'] as RoundingAttr,
  );
}

/** inputs dy, input, output; attrs filterSize, strides, pad, dimRoundingMode. */
export const maxPoolGradKernel: KernelFunc = ({ inputs, backend, attrs = {} }) => {
  const memory = asBackendMemory(backend, 'MaxPoolGrad');
  const dy = inputs['dy']!;
  const input = inputs['input']!;
  const info = poolInfo(input.shape, attrs, 'MaxPoolGrad');
  const { batchSize, inHeight, inWidth, inChannels: channels, outHeight, outWidth } = info;
  const { strideHeight, strideWidth, effectiveFilterHeight, effectiveFilterWidth } = info;
  const top = info.padInfo.top;
  const left = info.padInfo.left;
  const best = new Float64Array(channels);
  const bestIndex = new Int32Array(channels);

  const { info: out, values: dx } = allocateOutput(memory, input.shape.slice(), 'float32');
  const xv = readValues(memory, input);
  const dyv = readValues(memory, dy);
  for (let b = 0; b < batchSize; b++) {
    for (let oy = 0; oy < outHeight; oy++) {
      const rowStart = Math.max(0, oy * strideHeight - top);
      const rowEnd = Math.min(inHeight, oy * strideHeight - top + effectiveFilterHeight);
      for (let ox = 0; ox < outWidth; ox++) {
        const colStart = Math.max(0, ox * strideWidth - left);
        const colEnd = Math.min(inWidth, ox * strideWidth - left + effectiveFilterWidth);
        best.fill(Number.NEGATIVE_INFINITY);
        bestIndex.fill(-1);
        // Scan the window in row-major order with channels innermost; '>' keeps the first maximum.
        for (let iy = rowStart; iy < rowEnd; iy++) {
          for (let ix = colStart; ix < colEnd; ix++) {
            const base = ((b * inHeight + iy) * inWidth + ix) * channels;
            for (let c = 0; c < channels; c++) {
              const value = xv[base + c]!;
              if (bestIndex[c] === -1 || value > best[c]!) {
                best[c] = value;
                bestIndex[c] = base + c;
              }
            }
          }
        }
        const dyBase = ((b * outHeight + oy) * outWidth + ox) * channels;
        for (let c = 0; c < channels; c++) {
          const target = bestIndex[c]!;
          if (target >= 0) dx[target] += dyv[dyBase + c]!;
        }
      }
    }
  }
  return out;
};

/** Per-output-cell factor `window area / real cells in the window`, shaped [1, OH, OW, 1]; null when all are 1. */
function avgPoolRescale(info: ReturnType<typeof backendUtil.computePool2DInfo>): Float32Array | null {
  const { inHeight, inWidth, outHeight, outWidth, strideHeight, strideWidth, filterHeight, filterWidth } = info;
  const top = info.padInfo.top;
  const left = info.padInfo.left;
  const area = filterHeight * filterWidth;
  const factors = new Float32Array(outHeight * outWidth);
  let needed = false;
  for (let oy = 0; oy < outHeight; oy++) {
    const rowStart = oy * strideHeight - top;
    const rows = Math.min(inHeight, rowStart + filterHeight) - Math.max(0, rowStart);
    for (let ox = 0; ox < outWidth; ox++) {
      const colStart = ox * strideWidth - left;
      const cols = Math.min(inWidth, colStart + filterWidth) - Math.max(0, colStart);
      const count = rows * cols;
      const factor = count > 0 ? area / count : 0;
      if (factor !== 1) needed = true;
      factors[oy * outWidth + ox] = factor;
    }
  }
  return needed ? factors : null;
}

export const avgPoolGradConfig: GradConfig = {
  kernelName: 'AvgPool',
  inputsToSave: ['x'],
  gradFunc: (dy, saved, attrs) => {
    const [x] = saved as [Tensor];
    const info = poolInfo(x.shape, attrs, 'AvgPool gradient');
    const factors = avgPoolRescale(info);
    const kernelAttrs = { filterSize: attrs['filterSize']!, strides: attrs['strides']!, pad: attrs['pad']! };
    return {
      x: () => {
        const dy4 = dy as Tensor;
        const scaled = factors === null ? dy4 : tf.mul(dy4, tf.tensor4d(factors, [1, info.outHeight, info.outWidth, 1]));
        return tf.engine().runKernel('AvgPoolGrad', { dy: scaled, input: x }, kernelAttrs) as Tensor;
      },
    };
  },
};
