/**
 * Conv2D backprop kernels composed from a backend's own forward kernels.
 *
 * wasm has no `Conv2DBackpropFilter` at all, and its `Conv2DBackpropInput` does not use XNNPACK (1.6–2.4 GFLOP/s
 * against 15–25 for a forward conv). Both gradients can be written as forward convolutions, which run on XNNPACK:
 *
 * - filter gradient: batch becomes the contraction axis. With x windowed to the padded rows the forward read,
 *   `dW = conv2d(xᵀ[ci, H', W', B], dyᵀ[OH, OW, B, co], stride 1, dilation = stride)`, then `[ci,kh,kw,co] → [kh,kw,ci,co]`.
 *   For 1×1 filters it is one matMul of the (strided) input and dy.
 * - input gradient: polyphase decomposition of the transposed convolution. Input rows `p = r + s·t` of phase `r`
 *   receive only the filter taps `r, r+s, r+2s, …`, so each of the s² phases is a stride-1 convolution of dy with a
 *   reversed sub-filter; the phases are then interleaved. For stride 1 this is the usual `conv2d(dy, rot180(W)ᵀ)`.
 *   No multiply-add is spent on inserted zeros.
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
  'StridedSlice',
  'BatchMatMul',
  'Reverse',
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

function convInfoFor(xShape: Shape4, filterShape: Shape4, attrs: NamedAttrMap, kernelName: string) {
  assertChannelsLast(attrs['dataFormat'], kernelName);
  const strides = attrs['strides'] as number | [number, number];
  const pad = attrs['pad'] as PadAttr;
  const rounding = attrs['dimRoundingMode'] as RoundingAttr;
  return backendUtil.computeConv2DInfo(xShape, filterShape, strides, 1, pad, rounding, false, 'channelsLast');
}

/** `Conv2DBackpropFilter` (inputs x, dy; attrs strides, pad, dataFormat, dimRoundingMode, filterShape). */
export function makeConv2DBackpropFilter(lookup: KernelLookup): KernelFunc {
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
  /**
   * Correlates `dy` (already cropped) with the phase's sub-filter, reversed in space and still in the forward
   * layout [tapsH, tapsW, …], using `pad`; returns [B, phaseRows, phaseCols, ci].
   */
  convolvePhase(seq: KernelSequence, dy: TensorInfo, reversedSubFilter: TensorInfo, pad: ExplicitPad): TensorInfo;
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
      let sub = filter;
      if (sh > 1 || sw > 1) {
        sub = seq.run(
          'StridedSlice',
          { x: filter },
          {
            begin: [rh, rw, 0, 0],
            end: filter.shape,
            strides: [sh, sw, 1, 1],
            beginMask: 0,
            endMask: 0,
            ellipsisMask: 0,
            newAxisMask: 0,
            shrinkAxisMask: 0,
          },
        );
      }
      if (tapsH > 1 || tapsW > 1) sub = seq.run('Reverse', { x: sub }, { dims: [0, 1] });

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
      return polyphaseBackpropInput(seq, {
        dy,
        filter,
        inputShape,
        info,
        convolvePhase: (s, dyPart, reversed, pad) =>
          s.run(
            'Conv2D',
            // [tapsH, tapsW, ci, co] → [tapsH, tapsW, co, ci]: dy's channels are the input channels now.
            { x: dyPart, filter: s.transpose(reversed, [0, 1, 3, 2]) },
            { strides: [1, 1], pad, dataFormat: 'NHWC', dilations: [1, 1] },
          ),
      });
    });
}

export const DEPTHWISE_BACKPROP_INPUT_KERNELS_NEEDED = [
  'DepthwiseConv2dNative',
  'Reshape',
  'Slice',
  'StridedSlice',
  'Reverse',
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
