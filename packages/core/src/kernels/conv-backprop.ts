/**
 * Conv2D backprop kernels composed from a backend's own forward kernels.
 *
 * wasm has no `Conv2DBackpropFilter` at all, and its `Conv2DBackpropInput` does not use XNNPACK (1.6–2.4 GFLOP/s
 * against 15–25 for a forward conv). Both gradients can be written as forward convolutions, which run on XNNPACK:
 *
 * - filter gradient: one matMul, `dW = colᵀ · dy` with the (transposed) im2col matrix of x built in JS. For 1×1
 *   filters col is the (strided) input itself. Where col would be too large, batch becomes the contraction axis of
 *   a forward conv instead: with x windowed to the padded rows the forward read,
 *   `dW = conv2d(xᵀ[ci, H', W', B], dyᵀ[OH, OW, B, co], stride 1, dilation = stride)`, then `[ci,kh,kw,co] → [kh,kw,ci,co]`.
 * - input gradient: polyphase decomposition of the transposed convolution. Input rows `p = r + s·t` of phase `r`
 *   receive only the filter taps `r, r+s, r+2s, …`, so each of the s² phases is a stride-1 convolution of dy with a
 *   reversed sub-filter; the phases are then interleaved. For stride 1 this is the usual `conv2d(dy, rot180(W)ᵀ)`.
 *   No multiply-add is spent on inserted zeros. Where the output grid is small next to the filter, one matMul
 *   `W · dyᵀ` and a col2im scatter-add instead (`prefersMatMulInputGradient`).
 *
 * Padding follows `backend_util.computeConv2DInfo`, the same function the forward kernels use, so 'same'
 * (TF rule), 'valid', numeric and explicit paddings all match the forward pass.
 */
import type { KernelFunc, NamedAttrMap, TensorInfo } from '@tensorflow/tfjs-core';
import {
  allocateOutput,
  assertChannelsLast,
  type BackendMemory,
  backendUtil,
  composeKernels,
  type KernelLookup,
  type KernelSequence,
  type PadAttr,
  pairOf,
  type RoundingAttr,
  readValues,
} from './backend-access';

export const CONV_BACKPROP_KERNELS_NEEDED = [
  'Conv2D',
  'Transpose',
  'Reshape',
  'Slice',
  'PadV2',
  'BatchMatMul',
] as const;

type Shape4 = [number, number, number, number];

function shape4(shape: readonly number[], what: string): Shape4 {
  if (shape.length !== 4) throw new Error(`${what}: expected a rank-4 NHWC shape, found [${shape.join(',')}]`);
  return [shape[0]!, shape[1]!, shape[2]!, shape[3]!];
}

/**
 * Rows `[rowStart, rowEnd)` and columns `[colStart, colEnd)` of an NHWC tensor, reading zeros outside it
 * (negative starts and ends past the size are zero padding).
 */
function spatialWindow(
  seq: KernelSequence,
  x: TensorInfo,
  rowStart: number,
  rowEnd: number,
  colStart: number,
  colEnd: number,
): TensorInfo {
  const [b, h, w, c] = shape4(x.shape, 'spatialWindow');
  const cropTop = Math.max(0, rowStart);
  const cropBottom = Math.min(h, rowEnd);
  const cropLeft = Math.max(0, colStart);
  const cropRight = Math.min(w, colEnd);
  let out = x;
  if (cropTop > 0 || cropBottom < h || cropLeft > 0 || cropRight < w) {
    out = seq.run('Slice', { x: out }, { begin: [0, cropTop, cropLeft, 0], size: [b, cropBottom - cropTop, cropRight - cropLeft, c] });
  }
  const padTop = Math.max(0, -rowStart);
  const padBottom = Math.max(0, rowEnd - h);
  const padLeft = Math.max(0, -colStart);
  const padRight = Math.max(0, colEnd - w);
  if (padTop > 0 || padBottom > 0 || padLeft > 0 || padRight > 0) {
    out = seq.run(
      'PadV2',
      { x: out },
      {
        paddings: [
          [0, 0],
          [padTop, padBottom],
          [padLeft, padRight],
          [0, 0],
        ],
        constantValue: 0,
      },
    );
  }
  return out;
}

interface GridSampling {
  top: number;
  left: number;
  strideHeight: number;
  strideWidth: number;
  outHeight: number;
  outWidth: number;
}

/**
 * The input cells a 1×1 convolution reads: `x[b, oy·sh − top, ox·sw − left, :]`, zero outside x. A JS block copy:
 * wasm's StridedSlice runs element by element in JS and took 47 ms for what this does in ~3 ms.
 */
function sampleGrid(memory: BackendMemory, x: TensorInfo, grid: GridSampling): TensorInfo {
  const [batch, height, width, channels] = shape4(x.shape, 'sampleGrid');
  const { top, left, strideHeight, strideWidth, outHeight, outWidth } = grid;
  const { info, values: out } = allocateOutput(memory, [batch, outHeight, outWidth, channels], 'float32');
  const xv = readValues(memory, x);
  for (let b = 0; b < batch; b++) {
    for (let oy = 0; oy < outHeight; oy++) {
      const iy = oy * strideHeight - top;
      if (iy < 0 || iy >= height) continue;
      for (let ox = 0; ox < outWidth; ox++) {
        const ix = ox * strideWidth - left;
        if (ix < 0 || ix >= width) continue;
        const from = ((b * height + iy) * width + ix) * channels;
        const to = ((b * outHeight + oy) * outWidth + ox) * channels;
        for (let c = 0; c < channels; c++) out[to + c] = xv[from + c]!;
      }
    }
  }
  return info;
}

/** Batched matMul of rank-2 operands without transpose flags (wasm's transposed path is 10–40× slower). */
function matMul2d(seq: KernelSequence, a: TensorInfo, b: TensorInfo): TensorInfo {
  const a3 = seq.reshape(a, [1, a.shape[0]!, a.shape[1]!]);
  const b3 = seq.reshape(b, [1, b.shape[0]!, b.shape[1]!]);
  const out = seq.run('BatchMatMul', { a: a3, b: b3 }, { transposeA: false, transposeB: false });
  return seq.reshape(out, [a.shape[0]!, b.shape[1]!]);
}

/** Largest im2col matrix (floats) the filter gradient builds; above it, the dilated-convolution formulation. */
const IM2COL_MAX_ELEMENTS = 48 * 2 ** 20;

/**
 * The im2col matrix of a convolution, transposed: `colT[(ky·kw + kx)·ci + c, (b·OH + oy)·OW + ox]` is the input value
 * that filter tap (ky, kx, c) multiplies for output (b, oy, ox), zero in the padding. A JS pass over the backend's
 * memory (rows of colT are written in order of the output positions, so every write stream is sequential).
 */
function im2colTransposed(memory: BackendMemory, x: TensorInfo, info: ReturnType<typeof backendUtil.computeConv2DInfo>): TensorInfo {
  const [batch, height, width, ci] = shape4(x.shape, 'im2col');
  const n = batch * info.outHeight * info.outWidth;
  const { info: out, values: col } = allocateOutput(memory, [info.filterHeight * info.filterWidth * ci, n], 'float32', true);
  const xv = readValues(memory, x);
  forEachTap([batch, height, width, ci], info, (from, to) => {
    for (let c = 0; c < ci; c++, to += n) col[to] = xv[from + c]!;
  });
  return out;
}

/**
 * Walks every (filter tap, output position) pair of a convolution that reads a real (non-padding) input cell, in the
 * order of `im2colTransposed`'s rows: `visit(inputOffset, colOffset)` gets the offset of the input cell's channel 0 in
 * NHWC and of its column in the tap's row of the transposed im2col matrix (channel c is `colOffset + c·n`).
 */
function forEachTap(inputShape: Shape4, info: ReturnType<typeof backendUtil.computeConv2DInfo>, visit: (inputOffset: number, colOffset: number) => void): void {
  const [batch, height, width, ci] = inputShape;
  const { filterHeight: kh, filterWidth: kw, strideHeight: sh, strideWidth: sw, outHeight: oh, outWidth: ow } = info;
  const { top, left } = info.padInfo;
  const n = batch * oh * ow;
  for (let ky = 0; ky < kh; ky++) {
    for (let kx = 0; kx < kw; kx++) {
      const tapRow = (ky * kw + kx) * ci * n;
      for (let b = 0; b < batch; b++) {
        for (let oy = 0; oy < oh; oy++) {
          const iy = oy * sh - top + ky;
          if (iy < 0 || iy >= height) continue;
          const rowBase = (b * height + iy) * width;
          const column0 = (b * oh + oy) * ow;
          for (let ox = 0; ox < ow; ox++) {
            const ix = ox * sw - left + kx;
            if (ix < 0 || ix >= width) continue;
            visit((rowBase + ix) * ci, tapRow + column0 + ox);
          }
        }
      }
    }
  }
}

function convInfoFor(xShape: Shape4, filterShape: Shape4, attrs: NamedAttrMap, kernelName: string) {
  assertChannelsLast(attrs['dataFormat'], kernelName);
  const strides = attrs['strides'] as number | [number, number];
  const pad = attrs['pad'] as PadAttr;
  const rounding = attrs['dimRoundingMode'] as RoundingAttr;
  return backendUtil.computeConv2DInfo(xShape, filterShape, strides, 1, pad, rounding, false, 'channelsLast');
}

/**
 * `Conv2DBackpropFilter` (inputs x, dy; attrs strides, pad, dataFormat, dimRoundingMode, filterShape).
 * `im2colMaxElements`: the largest im2col matrix to build (tests set 0 to reach the dilated-convolution formulation).
 */
export function makeConv2DBackpropFilter(lookup: KernelLookup, im2colMaxElements = IM2COL_MAX_ELEMENTS): KernelFunc {
  return ({ inputs, backend, attrs = {} }) =>
    composeKernels(backend, lookup, 'Conv2DBackpropFilter', (seq) => {
      const x = inputs['x']!;
      const dy = inputs['dy']!;
      const xShape = shape4(x.shape, 'Conv2DBackpropFilter x');
      const filterShape = shape4(attrs['filterShape'] as number[], 'Conv2DBackpropFilter filterShape');
      const info = convInfoFor(xShape, filterShape, attrs, 'Conv2DBackpropFilter');
      const [kh, kw, ci, co] = filterShape;
      const [batch] = xShape;
      const { strideHeight: sh, strideWidth: sw, outHeight: oh, outWidth: ow } = info;
      if (dy.shape[1] !== oh || dy.shape[2] !== ow || dy.shape[3] !== co) {
        throw new Error(`Conv2DBackpropFilter: dy has shape [${dy.shape.join(',')}], expected [${batch},${oh},${ow},${co}]`);
      }
      // The padded input rows the forward pass actually read.
      const rows = (oh - 1) * sh + kh;
      const cols = (ow - 1) * sw + kw;
      const top = info.padInfo.top;
      const left = info.padInfo.left;

      if (kh === 1 && kw === 1) {
        const readsAll = sh === 1 && sw === 1 && top === 0 && left === 0 && oh === xShape[1] && ow === xShape[2];
        const sampled = readsAll
          ? x
          : seq.own(sampleGrid(seq.memory, x, { top, left, strideHeight: sh, strideWidth: sw, outHeight: oh, outWidth: ow }));
        const n = batch * oh * ow;
        const x2 = seq.reshape(sampled, [n, ci]);
        const dy2 = seq.reshape(dy, [n, co]);
        // Transpose whichever operand is smaller; transposing the [co, ci] result back is cheap.
        if (ci <= co) {
          const grad = matMul2d(seq, seq.transpose(x2, [1, 0]), dy2);
          return seq.reshape(grad, [1, 1, ci, co]);
        }
        const gradT = matMul2d(seq, seq.transpose(dy2, [1, 0]), x2);
        return seq.reshape(seq.transpose(gradT, [1, 0]), [1, 1, ci, co]);
      }

      if (batch * oh * ow * kh * kw * ci <= im2colMaxElements) {
        // dW [kh·kw·ci, co] = colᵀ [kh·kw·ci, B·OH·OW] · dy [B·OH·OW, co]: one large product on XNNPACK, 1.25–2.5×
        // faster on wasm than the dilated convolution below (ResNet50's 3×3 layers at batch 2, the lite preset's
        // 3×3 512→512 on 16×7×7), which stays for inputs whose im2col matrix would be too large.
        const colT = seq.own(im2colTransposed(seq.memory, x, info));
        const grad = matMul2d(seq, colT, seq.reshape(dy, [batch * oh * ow, co]));
        return seq.reshape(grad, [kh, kw, ci, co]);
      }
      const xWindow = spatialWindow(seq, x, -top, -top + rows, -left, -left + cols);
      const xT = seq.transpose(xWindow, [3, 1, 2, 0]); // [ci, rows, cols, B]
      const dyT = seq.transpose(dy, [1, 2, 0, 3]); // [OH, OW, B, co]
      const grad = seq.run(
        'Conv2D',
        { x: xT, filter: dyT },
        { strides: [1, 1], pad: 'valid', dataFormat: 'NHWC', dilations: [sh, sw] },
      ); // [ci, kh, kw, co]
      return seq.transpose(grad, [1, 2, 0, 3]);
    });
}

/** One spatial axis of the polyphase plan for the input gradient. */
interface AxisPlan {
  stride: number;
  kernel: number;
  /** First and one-past-last index `t` of the padded input rows `p = phase + stride·t` we need. */
  tStart: number;
  tEnd: number;
  /** Offset of input row 0 inside the interleaved result. */
  offset: number;
  dyLength: number;
}

function axisPlan(stride: number, kernel: number, padBefore: number, inSize: number, dyLength: number): AxisPlan {
  const tStart = Math.floor(padBefore / stride);
  const tEnd = Math.ceil((padBefore + inSize) / stride);
  return { stride, kernel, tStart, tEnd, offset: padBefore - stride * tStart, dyLength };
}

/** Number of taps `phase, phase+s, …` below `kernel`. */
function tapsOfPhase(plan: AxisPlan, phase: number): number {
  return phase < plan.kernel ? Math.ceil((plan.kernel - phase) / plan.stride) : 0;
}

/**
 * dy rows `[tStart - taps + 1, tEnd)` are needed for phase outputs `t ∈ [tStart, tEnd)`. Returns the crop (rows that
 * exist in dy) and the zero padding the convolution adds around it.
 */
function dyRange(plan: AxisPlan, taps: number) {
  const start = plan.tStart - taps + 1;
  const end = plan.tEnd;
  const cropStart = Math.max(0, start);
  const cropEnd = Math.min(plan.dyLength, end);
  return { cropStart, cropEnd, padBefore: cropStart - start, padAfter: end - cropEnd };
}

/** The zero padding a phase convolution adds around its (possibly cropped) dy. */
type ExplicitPad = [[number, number], [number, number], [number, number], [number, number]];

interface PolyphaseProblem {
  dy: TensorInfo;
  filter: TensorInfo;
  /** [B, H, W, ci] of the gradient to compute. */
  inputShape: Shape4;
  info: ReturnType<typeof backendUtil.computeConv2DInfo>;
  /** Whether the phase filter's last two axes are swapped ([tapsH, tapsW, co, ci] for a dense conv's dX). */
  swapFilterChannels: boolean;
  /**
   * Correlates `dy` (already cropped) with the phase's sub-filter, reversed in space (and with its channel axes
   * swapped when `swapFilterChannels`), using `pad`; returns [B, phaseRows, phaseCols, ci].
   */
  convolvePhase(seq: KernelSequence, dy: TensorInfo, reversedSubFilter: TensorInfo, pad: ExplicitPad): TensorInfo;
}

interface PhaseFilterPlan {
  rh: number;
  rw: number;
  sh: number;
  sw: number;
  tapsH: number;
  tapsW: number;
  swapChannels: boolean;
}

/**
 * The filter taps of phase (rh, rw), reversed in space: `out[th, tw] = filter[rh + (tapsH−1−th)·sh, rw + (tapsW−1−tw)·sw]`,
 * with the two channel axes swapped when `swapChannels`. One JS pass: wasm's `Reverse` took 160 ms on a
 * [3,3,512,512] filter (longer than the transposed convolution's other steps together) and its `StridedSlice` runs
 * element by element.
 */
function phaseFilter(memory: BackendMemory, filter: TensorInfo, plan: PhaseFilterPlan): TensorInfo {
  const [kh, kw, c0, c1] = shape4(filter.shape, 'phaseFilter');
  const { rh, rw, sh, sw, tapsH, tapsW, swapChannels } = plan;
  const block = c0 * c1;
  const { info, values: out } = allocateOutput(memory, swapChannels ? [tapsH, tapsW, c1, c0] : [tapsH, tapsW, c0, c1], 'float32', false);
  const w = readValues(memory, filter);
  for (let th = 0; th < tapsH; th++) {
    const fy = rh + (tapsH - 1 - th) * sh;
    for (let tw = 0; tw < tapsW; tw++) {
      const fx = rw + (tapsW - 1 - tw) * sw;
      const from = (fy * kw + fx) * block;
      const to = (th * tapsW + tw) * block;
      if (fy >= kh || fx >= kw) throw new Error(`phaseFilter: tap (${fy}, ${fx}) outside a ${kh}x${kw} filter`);
      if (!swapChannels) {
        for (let i = 0; i < block; i++) out[to + i] = w[from + i]!;
        continue;
      }
      // out[.., j, i] = w[.., i, j], in tiles so that both sides stay in cache.
      const TILE = 32;
      for (let i0 = 0; i0 < c0; i0 += TILE) {
        const i1 = Math.min(c0, i0 + TILE);
        for (let j0 = 0; j0 < c1; j0 += TILE) {
          const j1 = Math.min(c1, j0 + TILE);
          for (let i = i0; i < i1; i++) {
            const row = from + i * c1;
            for (let j = j0; j < j1; j++) out[to + j * c0 + i] = w[row + j]!;
          }
        }
      }
    }
  }
  return info;
}

/** Input gradient of a strided convolution (dense or depthwise) from s² stride-1 convolutions. */
function polyphaseBackpropInput(seq: KernelSequence, problem: PolyphaseProblem): TensorInfo {
  const { dy, filter, inputShape, info } = problem;
  const [batch, height, width, ci] = inputShape;
  const [kh, kw] = filter.shape as Shape4;
  const { strideHeight: sh, strideWidth: sw, outHeight: oh, outWidth: ow } = info;
  const rowsPlan = axisPlan(sh, kh, info.padInfo.top, height, oh);
  const colsPlan = axisPlan(sw, kw, info.padInfo.left, width, ow);
  const phaseRows = rowsPlan.tEnd - rowsPlan.tStart;
  const phaseCols = colsPlan.tEnd - colsPlan.tStart;

  // null marks a phase without filter taps (filter smaller than the stride): its input rows get no gradient.
  const phases: (TensorInfo | null)[] = [];
  for (let rh = 0; rh < sh; rh++) {
    for (let rw = 0; rw < sw; rw++) {
      const tapsH = tapsOfPhase(rowsPlan, rh);
      const tapsW = tapsOfPhase(colsPlan, rw);
      if (tapsH === 0 || tapsW === 0) {
        phases.push(null);
        continue;
      }
      const sub = seq.own(phaseFilter(seq.memory, filter, { rh, rw, sh, sw, tapsH, tapsW, swapChannels: problem.swapFilterChannels }));

      const rows = dyRange(rowsPlan, tapsH);
      const cols = dyRange(colsPlan, tapsW);
      let dyPart = dy;
      if (rows.cropStart > 0 || rows.cropEnd < oh || cols.cropStart > 0 || cols.cropEnd < ow) {
        dyPart = seq.run(
          'Slice',
          { x: dy },
          {
            begin: [0, rows.cropStart, cols.cropStart, 0],
            size: [batch, rows.cropEnd - rows.cropStart, cols.cropEnd - cols.cropStart, dy.shape[3]!],
          },
        );
      }
      const pad: ExplicitPad = [
        [0, 0],
        [rows.padBefore, rows.padAfter],
        [cols.padBefore, cols.padAfter],
        [0, 0],
      ];
      phases.push(problem.convolvePhase(seq, dyPart, sub, pad));
    }
  }

  const only = phases.length === 1 ? phases[0] : null;
  if (only && rowsPlan.offset === 0 && colsPlan.offset === 0 && phaseRows === height && phaseCols === width) return only;
  return interleavePhases(seq.memory, phases, { batch, height, width, channels: ci, rowsPlan, colsPlan, phaseRows, phaseCols });
}

/**
 * Scatter-adds a transposed im2col matrix back onto the input grid (the adjoint of `im2colTransposed`):
 * `dx[b, oy·sh − top + ky, ox·sw − left + kx, c] += colT[(ky·kw + kx)·ci + c, (b·OH + oy)·OW + ox]`.
 */
function col2imTransposed(
  memory: BackendMemory,
  colT: TensorInfo,
  inputShape: Shape4,
  info: ReturnType<typeof backendUtil.computeConv2DInfo>,
): TensorInfo {
  const [batch, height, width, ci] = inputShape;
  const n = batch * info.outHeight * info.outWidth;
  const { info: out, values: dx } = allocateOutput(memory, [batch, height, width, ci], 'float32', true);
  const col = readValues(memory, colT);
  forEachTap(inputShape, info, (to, from) => {
    for (let c = 0; c < ci; c++, from += n) dx[to + c]! += col[from]!;
  });
  return out;
}

/**
 * Whether the input gradient is computed as one matMul + col2im rather than polyphase convolutions: when the
 * output grid is small next to the filter (ResNet50's last stages, the lite preset's 7×7 grid), XNNPACK spends a
 * convolution's time packing a filter that is used for few output positions; the product
 * `W[kh·kw·ci, co] · dyᵀ[co, B·OH·OW]` packs only dy. Measured on wasm, 1 thread (polyphase → matMul): 3×3
 * 1024→1024 on [1,14,14,1024] 507 → 148 ms, 3×3 512→512 on [2,7,7,512] 49 → 18 ms and on [16,7,7,512] 220 → 161 ms,
 * 3×3 256→256 on [2,14,14,256] 22 → 17 ms; slower where the output grid has more positions than half the filter's
 * rows ([2,28,28,128]: 17 → 21 ms, [2,56,56,64]: 13 → 29 ms), which keep the convolutions.
 */
function prefersMatMulInputGradient(filterShape: Shape4, positions: number): boolean {
  const [kh, kw, ci] = filterShape;
  return kh * kw > 1 && positions * 2 <= kh * kw * ci && kh * kw * ci * positions <= IM2COL_MAX_ELEMENTS;
}

/** `Conv2DBackpropInput` (inputs dy, filter; attrs strides, pad, dataFormat, dimRoundingMode, inputShape). */
export function makeConv2DBackpropInput(lookup: KernelLookup): KernelFunc {
  return ({ inputs, backend, attrs = {} }) =>
    composeKernels(backend, lookup, 'Conv2DBackpropInput', (seq) => {
      const dy = inputs['dy']!;
      const filter = inputs['filter']!;
      const inputShape = shape4(attrs['inputShape'] as number[], 'Conv2DBackpropInput inputShape');
      const filterShape = shape4(filter.shape, 'Conv2DBackpropInput filter');
      const info = convInfoFor(inputShape, filterShape, attrs, 'Conv2DBackpropInput');
      const expected = [inputShape[0], info.outHeight, info.outWidth, filterShape[3]];
      if (dy.shape.join(',') !== expected.join(',')) {
        throw new Error(`Conv2DBackpropInput: dy has shape [${dy.shape.join(',')}], expected [${expected.join(',')}]`);
      }
      const positions = inputShape[0] * info.outHeight * info.outWidth;
      if (prefersMatMulInputGradient(filterShape, positions)) {
        const [kh, kw, ci, co] = filterShape;
        const dyT = seq.transpose(seq.reshape(dy, [positions, co]), [1, 0]);
        const colT = matMul2d(seq, seq.reshape(filter, [kh * kw * ci, co]), dyT);
        return seq.own(col2imTransposed(seq.memory, colT, inputShape, info));
      }
      return polyphaseBackpropInput(seq, {
        dy,
        filter,
        inputShape,
        info,
        // [tapsH, tapsW, ci, co] → [tapsH, tapsW, co, ci]: dy's channels are the input channels now.
        swapFilterChannels: true,
        convolvePhase: (s, dyPart, reversed, pad) =>
          s.run(
            'Conv2D',
            { x: dyPart, filter: reversed },
            { strides: [1, 1], pad, dataFormat: 'NHWC', dilations: [1, 1] },
          ),
      });
    });
}

export const DEPTHWISE_BACKPROP_INPUT_KERNELS_NEEDED = [
  'DepthwiseConv2dNative',
  'Reshape',
  'Slice',
  'Sum',
] as const;

/**
 * `DepthwiseConv2dNativeBackpropInput` (inputs dy, filter; attrs strides, pad, dilations, dimRoundingMode,
 * inputShape) as polyphase depthwise convolutions, which run on XNNPACK on wasm (6× faster than a JS loop).
 * With a channel multiplier m, dy's C·m channels are convolved separately and each group of m is summed.
 * Dilated filters (stride 1) go to `dilatedFallback`.
 */
export function makeDepthwiseBackpropInput(lookup: KernelLookup, dilatedFallback: KernelFunc): KernelFunc {
  return (args) => {
    const attrs = args.attrs ?? {};
    const [dh, dw] = attrs['dilations'] === undefined || attrs['dilations'] === null ? [1, 1] : pairOf(attrs['dilations'], 'dilations');
    if (dh !== 1 || dw !== 1) return dilatedFallback(args);
    return composeKernels(args.backend, lookup, 'DepthwiseConv2dNativeBackpropInput', (seq) => {
      const dy = args.inputs['dy']!;
      const filter = args.inputs['filter']!;
      const inputShape = shape4(attrs['inputShape'] as number[], 'DepthwiseConv2dNativeBackpropInput inputShape');
      const filterShape = shape4(filter.shape, 'DepthwiseConv2dNativeBackpropInput filter');
      const info = backendUtil.computeConv2DInfo(
        inputShape,
        filterShape,
        attrs['strides'] as number | [number, number],
        1,
        attrs['pad'] as PadAttr,
        attrs['dimRoundingMode'] as RoundingAttr,
        true,
      );
      const [batch, , , channels] = inputShape;
      const multiplier = filterShape[3];
      const expected = [batch, info.outHeight, info.outWidth, channels * multiplier];
      if (dy.shape.join(',') !== expected.join(',')) {
        throw new Error(`DepthwiseConv2dNativeBackpropInput: dy has shape [${dy.shape.join(',')}], expected [${expected.join(',')}]`);
      }
      return polyphaseBackpropInput(seq, {
        dy,
        filter,
        inputShape,
        info,
        swapFilterChannels: false,
        convolvePhase: (s, dyPart, reversed, pad) => {
          const [tapsH, tapsW] = reversed.shape;
          // One depthwise filter per dy channel c·m + q, in dy's channel order.
          const perChannel = multiplier === 1 ? reversed : s.reshape(reversed, [tapsH!, tapsW!, channels * multiplier, 1]);
          const out = s.run('DepthwiseConv2dNative', { x: dyPart, filter: perChannel }, { strides: [1, 1], pad, dilations: [1, 1] });
          if (multiplier === 1) return out;
          const [b, rows, cols] = out.shape;
          const grouped = s.reshape(out, [b!, rows!, cols!, channels, multiplier]);
          return s.run('Sum', { x: grouped }, { axis: [4], keepDims: false });
        },
      });
    });
  };
}

interface InterleaveLayout {
  batch: number;
  height: number;
  width: number;
  channels: number;
  rowsPlan: AxisPlan;
  colsPlan: AxisPlan;
  phaseRows: number;
  phaseCols: number;
}

/**
 * Writes phase (rh, rw) row t, column u to input row `t·sh + rh − offset`, column `u·sw + rw − offset`, dropping the
 * padding rows. One pass of block copies over the backend's memory; a transpose-based interleave (Concat + 6-D
 * Transpose + Slice) was slower than the convolutions themselves on wasm.
 */
function interleavePhases(memory: BackendMemory, phases: (TensorInfo | null)[], layout: InterleaveLayout): TensorInfo {
  const { batch, height, width, channels, rowsPlan, colsPlan, phaseRows, phaseCols } = layout;
  const sh = rowsPlan.stride;
  const sw = colsPlan.stride;
  // With every phase present each input cell is written exactly once, so the output needs no zero fill.
  const everyPhase = phases.every((p) => p !== null);
  const { info, values: dx } = allocateOutput(memory, [batch, height, width, channels], 'float32', !everyPhase);
  const views = phases.map((p) => (p === null ? null : readValues(memory, p)));
  for (let rh = 0; rh < sh; rh++) {
    for (let rw = 0; rw < sw; rw++) {
      const src = views[rh * sw + rw];
      if (src === null || src === undefined) continue;
      for (let b = 0; b < batch; b++) {
        for (let t = 0; t < phaseRows; t++) {
          const row = t * sh + rh - rowsPlan.offset;
          if (row < 0 || row >= height) continue;
          for (let u = 0; u < phaseCols; u++) {
            const col = u * sw + rw - colsPlan.offset;
            if (col < 0 || col >= width) continue;
            const from = ((b * phaseRows + t) * phaseCols + u) * channels;
            const to = ((b * height + row) * width + col) * channels;
            // A plain loop beats subarray().set() here: it allocates no view per block.
            for (let c = 0; c < channels; c++) dx[to + c] = src[from + c]!;
          }
        }
      }
    }
  }
  return info;
}
