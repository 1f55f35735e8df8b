/**
 * `DepthwiseConv2dNativeBackpropFilter` and `DepthwiseConv2dNativeBackpropInput` as plain loops over the backend's
 * typed arrays. wasm has neither kernel, so MobileNet-style depthwise convs could not be fine-tuned there.
 *
 * A depthwise conv does ~1/C of a dense conv's work, so a loop whose innermost index runs over contiguous channels
 * is fast enough (see KERNELS.md for timings), and needs no temporaries. Filter-gradient sums are accumulated in
 * float64 because each of them adds up B·OH·OW products.
 */
import type { KernelFunc, NamedAttrMap } from '@tensorflow/tfjs-core';
import { allocateOutput, asBackendMemory, backendUtil, readValues, type PadAttr, type RoundingAttr } from './backend-access';

function depthwiseInfo(
  xShape: number[],
  filterShape: number[],
  attrs: NamedAttrMap,
  kernelName: string,
): ReturnType<typeof backendUtil.computeConv2DInfo> {
  if (xShape.length !== 4 || filterShape.length !== 4) {
    throw new Error(`${kernelName}: expected rank-4 input and filter shapes, found [${xShape.join(',')}] and [${filterShape.join(',')}]`);
  }
  const dilations = (attrs['dilations'] ?? 1) as number | [number, number];
  return backendUtil.computeConv2DInfo(
    xShape as [number, number, number, number],
    filterShape as [number, number, number, number],
    attrs['strides'] as number | [number, number],
    dilations,
    attrs['pad'] as PadAttr,
    attrs['dimRoundingMode'] as RoundingAttr,
    true,
  );
}

/** inputs x [B,H,W,C], dy [B,OH,OW,C·m]; attrs strides, pad, dilations, dimRoundingMode, filterShape [kh,kw,C,m]. */
export const depthwiseBackpropFilterKernel: KernelFunc = ({ inputs, backend, attrs = {} }) => {
  const memory = asBackendMemory(backend, 'DepthwiseConv2dNativeBackpropFilter');
  const x = inputs['x']!;
  const dy = inputs['dy']!;
  const filterShape = attrs['filterShape'] as number[];
  const info = depthwiseInfo(x.shape, filterShape, attrs, 'DepthwiseConv2dNativeBackpropFilter');
  const { batchSize, inHeight, inWidth, inChannels, outHeight, outWidth, outChannels } = info;
  const { strideHeight, strideWidth, dilationHeight, dilationWidth, filterHeight, filterWidth } = info;
  const multiplier = outChannels / inChannels;
  const top = info.padInfo.top;
  const left = info.padInfo.left;
  const sums = new Float64Array(filterHeight * filterWidth * outChannels);

  const { info: out, values: outValues } = allocateOutput(memory, filterShape.slice(), 'float32');
  const xv = readValues(memory, x);
  const dyv = readValues(memory, dy);
  for (let b = 0; b < batchSize; b++) {
    for (let oy = 0; oy < outHeight; oy++) {
      for (let ox = 0; ox < outWidth; ox++) {
        const dyBase = ((b * outHeight + oy) * outWidth + ox) * outChannels;
        for (let fy = 0; fy < filterHeight; fy++) {
          const iy = oy * strideHeight - top + fy * dilationHeight;
          if (iy < 0 || iy >= inHeight) continue;
          for (let fx = 0; fx < filterWidth; fx++) {
            const ix = ox * strideWidth - left + fx * dilationWidth;
            if (ix < 0 || ix >= inWidth) continue;
            const xBase = ((b * inHeight + iy) * inWidth + ix) * inChannels;
            const wBase = (fy * filterWidth + fx) * outChannels;
            if (multiplier === 1) {
              for (let c = 0; c < inChannels; c++) sums[wBase + c] += xv[xBase + c]! * dyv[dyBase + c]!;
            } else {
              for (let c = 0; c < inChannels; c++) {
                const xValue = xv[xBase + c]!;
                const k = c * multiplier;
                for (let q = 0; q < multiplier; q++) sums[wBase + k + q] += xValue * dyv[dyBase + k + q]!;
              }
            }
          }
        }
      }
    }
  }
  outValues.set(sums);
  return out;
};

/** inputs dy [B,OH,OW,C·m], filter [kh,kw,C,m]; attrs strides, pad, dilations, dimRoundingMode, inputShape. */
export const depthwiseBackpropInputKernel: KernelFunc = ({ inputs, backend, attrs = {} }) => {
  const memory = asBackendMemory(backend, 'DepthwiseConv2dNativeBackpropInput');
  const dy = inputs['dy']!;
  const filter = inputs['filter']!;
  const inputShape = attrs['inputShape'] as number[];
  const info = depthwiseInfo(inputShape, filter.shape, attrs, 'DepthwiseConv2dNativeBackpropInput');
  const { batchSize, inHeight, inWidth, inChannels, outHeight, outWidth, outChannels } = info;
  const { strideHeight, strideWidth, dilationHeight, dilationWidth, filterHeight, filterWidth } = info;
  const multiplier = outChannels / inChannels;
  const top = info.padInfo.top;
  const left = info.padInfo.left;

  const { info: out, values: dx } = allocateOutput(memory, inputShape.slice(), 'float32');
  const dyv = readValues(memory, dy);
  const wv = readValues(memory, filter);
  for (let b = 0; b < batchSize; b++) {
    for (let oy = 0; oy < outHeight; oy++) {
      for (let ox = 0; ox < outWidth; ox++) {
        const dyBase = ((b * outHeight + oy) * outWidth + ox) * outChannels;
        for (let fy = 0; fy < filterHeight; fy++) {
          const iy = oy * strideHeight - top + fy * dilationHeight;
          if (iy < 0 || iy >= inHeight) continue;
          for (let fx = 0; fx < filterWidth; fx++) {
            const ix = ox * strideWidth - left + fx * dilationWidth;
            if (ix < 0 || ix >= inWidth) continue;
            const dxBase = ((b * inHeight + iy) * inWidth + ix) * inChannels;
            const wBase = (fy * filterWidth + fx) * outChannels;
            if (multiplier === 1) {
              for (let c = 0; c < inChannels; c++) dx[dxBase + c] += dyv[dyBase + c]! * wv[wBase + c]!;
            } else {
              for (let c = 0; c < inChannels; c++) {
                const k = c * multiplier;
                let sum = 0;
                for (let q = 0; q < multiplier; q++) sum += dyv[dyBase + k + q]! * wv[wBase + k + q]!;
                dx[dxBase + c] += sum;
              }
            }
          }
        }
      }
    }
  }
  return out;
};
