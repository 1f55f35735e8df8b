import { ConfigError } from '@s2cpnet/core';
import type { InitializerInfo, OnnxGraph, Value, ValueReader } from '../graph';

/**
 * 8-bit weights in an ONNX graph: large float32 weights stored as uint8 with a float32 min and step per group of
 * `groupSize` values, and a small dequantisation subgraph in front of their readers (Cast -> Mul -> Add -> Reshape,
 * plus a Concat where the last group is short and a Transpose for kernels stored in tfjs order). Every input of that subgraph is an initializer, so ONNX Runtime folds it
 * when it creates a session and inference runs on float32 weights, as fast as the float export. Standard opset-17
 * operators only: any ONNX runtime loads the files.
 *
 * The scheme is the one of 8-bit checkpoints (`@s2cpnet/model`'s tensor files): `value = min + q * step` with
 * `step = (max - min) / 255` over a group, one group per `groupSize` consecutive indices along the input axis of
 * one output channel. Grouping along the same axes as the checkpoint matters: re-quantising an 8-bit checkpoint's
 * values on the checkpoint's own groups recovers its 8-bit codes (batch norm folding scales a group as a whole), so
 * the export adds next to no error to what the checkpoint already had.
 */

/** Options of `quantizeWeights`. */
export interface QuantizeWeightsOptions {
  /** Values per quantisation group (default 32). Smaller groups are more accurate and larger. */
  groupSize?: number;
  /** Tensors with fewer values stay float32 (default 1024: biases, norms and small tables). */
  minQuantizedSize?: number;
}

/**
 * How a tensor is grouped: its values in stored order (the tensor itself, or `transpose(tensor, permutation)`) seen
 * as [outer, axis, inner], a group is `groupSize` consecutive indices along `axis` at one outer and one inner index;
 * the last group along `axis` is shorter when `axis` is not a multiple of the group size.
 */
export interface GroupLayout {
  outer: number;
  axis: number;
  inner: number;
  /** The stored order, when it is not the tensor's own: the dequantisation transposes back with the inverse. */
  permutation?: number[];
}

/** One tensor `quantizeWeights` stored as uint8. */
export interface QuantizedTensorReport {
  name: Value;
  shape: number[];
  layout: GroupLayout;
  groups: number;
  /** Largest |dequantised - original| over the tensor. */
  maxError: number;
}

/** What `quantizeWeights` did to a graph. */
export interface QuantizeReport {
  groupSize: number;
  minQuantizedSize: number;
  tensors: QuantizedTensorReport[];
  /** Values now stored as uint8. */
  values: number;
  /** Initializer bytes before and after. */
  bytesBefore: number;
  bytesAfter: number;
}

export const DEFAULT_GROUP_SIZE = 32;
export const DEFAULT_MIN_QUANTIZED_SIZE = 1024;

/** Checks the options once, at the edge (`exportOnnx`, `quantizeWeights`), naming the argument. */
export function checkQuantizeOptions(options: QuantizeWeightsOptions): Required<QuantizeWeightsOptions> {
  const groupSize = options.groupSize ?? DEFAULT_GROUP_SIZE;
  const minQuantizedSize = options.minQuantizedSize ?? DEFAULT_MIN_QUANTIZED_SIZE;
  if (!Number.isSafeInteger(groupSize) || groupSize < 2) throw new ConfigError('groupSize', `expected an integer of at least 2, found ${JSON.stringify(groupSize)}`);
  if (!Number.isSafeInteger(minQuantizedSize) || minQuantizedSize < 0) {
    throw new ConfigError('minQuantizedSize', `expected a non-negative integer, found ${JSON.stringify(minQuantizedSize)}`);
  }
  return { groupSize, minQuantizedSize };
}

/**
 * The grouping of a weight of `shape`, from what reads it, or null for a weight that stays float32:
 * - a `Conv` kernel [out, in, kh, kw]: consecutive values of one output channel in the (kh, kw, in) order of the
 *   tfjs kernel [kh, kw, in, out], which is exactly how a checkpoint groups that kernel's rows: stored as
 *   [out, kh, kw, in], or as it is when that gives the same groups (1x1 kernels, `in` a multiple of the group
 *   size: groups along `in` at one tap);
 * - a depthwise kernel [C, 1, kh, kw]: null. A checkpoint groups the tfjs kernel [kh, kw, C, 1] across channels,
 *   which batch norm folding then scales each by its own factor, so no grouping of the exported kernel recovers the
 *   checkpoint's codes: re-quantising them (per channel) changed 10 of 210 UCM captions of the released MobileNet
 *   model (CIDEr -0.017), and they are small (a few hundred KiB);
 * - anything else (a MatMul weight [in, out], a Gather table [V, dim], a 1x1 kernel reshaped to a MatMul): the last
 *   axis is the channel, groups run along the rows (all the other axes flattened), as in the checkpoint.
 */
export function groupLayout(shape: readonly number[], readers: readonly Pick<ValueReader, 'op' | 'inputIndex'>[], groupSize = DEFAULT_GROUP_SIZE): GroupLayout | null {
  const size = shape.reduce((a, b) => a * b, 1);
  const last = shape[shape.length - 1] ?? 1;
  if (shape.length >= 3 && readers.some((r) => r.op === 'Conv' && r.inputIndex === 1)) {
    const out = shape[0]!;
    const inChannels = shape[1]!;
    const taps = size / out / inChannels;
    if (inChannels === 1) return null;
    // The same groups without a transpose (which ONNX Runtime is slow to fold): a 1x1 kernel, or whole groups of
    // input channels at one tap.
    if (taps === 1 || inChannels % groupSize === 0) return { outer: out, axis: inChannels, inner: taps };
    const spatialAxes = Array.from({ length: shape.length - 2 }, (_, i) => i + 2);
    return { outer: out, axis: size / out, inner: 1, permutation: [0, ...spatialAxes, 1] };
  }
  return { outer: 1, axis: size / last, inner: last };
}

/** `values` of `shape` transposed by `permutation` (row-major), and the transposed shape. */
export function transposeValues(values: Float32Array, shape: readonly number[], permutation: readonly number[]): { values: Float32Array; shape: number[] } {
  const rank = shape.length;
  const outShape = permutation.map((p) => shape[p]!);
  const inStrides = new Array<number>(rank);
  for (let d = rank - 1, stride = 1; d >= 0; d--) {
    inStrides[d] = stride;
    stride *= shape[d]!;
  }
  const strides = permutation.map((p) => inStrides[p]!);
  const out = new Float32Array(values.length);
  const index = new Array<number>(rank).fill(0);
  for (let e = 0; e < values.length; e++) {
    let from = 0;
    for (let d = 0; d < rank; d++) from += index[d]! * strides[d]!;
    out[e] = values[from]!;
    for (let d = rank - 1; d >= 0; d--) {
      if (++index[d]! < outShape[d]!) break;
      index[d] = 0;
    }
  }
  return { values: out, shape: outShape };
}

/**
 * Group-wise affine uint8 quantisation over `layout`: `q = round((v - min) / step)`, `step = (max - min) / 255`
 * (1 where a group is constant). Parameters are ordered [outer, groups along the axis, inner].
 */
export function quantizeGroups(values: Float32Array, layout: GroupLayout, groupSize: number): { q: Uint8Array; min: Float32Array; step: Float32Array } {
  const { outer, axis, inner } = layout;
  if (outer * axis * inner !== values.length) throw new Error(`quantizeGroups: layout [${outer}, ${axis}, ${inner}] does not cover ${values.length} values`);
  const groups = Math.ceil(axis / groupSize);
  const count = outer * groups * inner;
  const min = new Float32Array(count).fill(Infinity);
  const max = new Float32Array(count).fill(-Infinity);
  const groupOf = (a: number, j: number, b: number) => (a * groups + Math.floor(j / groupSize)) * inner + b;
  for (let a = 0, e = 0; a < outer; a++) {
    for (let j = 0; j < axis; j++) {
      for (let b = 0; b < inner; b++, e++) {
        const k = groupOf(a, j, b);
        const v = values[e]!;
        if (v < min[k]!) min[k] = v;
        if (v > max[k]!) max[k] = v;
      }
    }
  }
  const step = new Float32Array(count);
  for (let k = 0; k < count; k++) step[k] = max[k]! > min[k]! ? (max[k]! - min[k]!) / 255 : 1;
  const q = new Uint8Array(values.length);
  for (let a = 0, e = 0; a < outer; a++) {
    for (let j = 0; j < axis; j++) {
      for (let b = 0; b < inner; b++, e++) {
        const k = groupOf(a, j, b);
        q[e] = Math.max(0, Math.min(255, Math.round((values[e]! - min[k]!) / step[k]!)));
      }
    }
  }
  return { q, min, step };
}

/** The float32 value the dequantisation subgraph computes: Mul, then Add, each rounded to float32. */
export function dequantizedValue(q: number, min: number, step: number): number {
  return Math.fround(Math.fround(q * step) + min);
}

/** Rows [from, to) along the middle axis of an [outer, axis, inner] array, as an [outer, to - from, inner] copy. */
function middleRows<T extends Uint8Array | Float32Array>(data: T, outer: number, axis: number, inner: number, from: number, to: number): T {
  const out = new (data.constructor as new (n: number) => T)(outer * (to - from) * inner);
  for (let a = 0; a < outer; a++) out.set(data.subarray((a * axis + from) * inner, (a * axis + to) * inner), a * (to - from) * inner);
  return out;
}

/**
 * The dequantisation subgraph of one tensor; returns its output (the tensor of `shape`). Whole groups are
 * [outer, full, groupSize, inner] with parameters [outer, full, 1, inner]; a short last group is [outer, rest, inner]
 * with parameters [outer, 1, inner]; the two are joined along the axis.
 */
function dequantizeSubgraph(g: OnnxGraph, hint: string, shape: readonly number[], layout: GroupLayout, groupSize: number, quantized: ReturnType<typeof quantizeGroups>): Value {
  const { outer, axis, inner } = layout;
  const groups = Math.ceil(axis / groupSize);
  const full = Math.floor(axis / groupSize);
  const rest = axis - full * groupSize;
  const part = (label: string, q: Uint8Array, qShape: number[], min: Float32Array, step: Float32Array, paramShape: number[]): Value => {
    const codes = g.initializer(`${hint}/${label}q`, q, qShape, 'uint8');
    const scaled = g.mul(g.op('Cast', [codes], { to: 1 }, `${hint}/${label}cast`), g.initializer(`${hint}/${label}step`, step, paramShape));
    return g.add(scaled, g.initializer(`${hint}/${label}min`, min, paramShape));
  };
  const parts: Value[] = [];
  if (full > 0) {
    const whole = part(
      '',
      middleRows(quantized.q, outer, axis, inner, 0, full * groupSize),
      [outer, full, groupSize, inner],
      middleRows(quantized.min, outer, groups, inner, 0, full),
      middleRows(quantized.step, outer, groups, inner, 0, full),
      [outer, full, 1, inner],
    );
    parts.push(rest > 0 ? g.reshape(whole, [outer, full * groupSize, inner]) : whole);
  }
  if (rest > 0) {
    parts.push(
      part(
        'tail/',
        middleRows(quantized.q, outer, axis, inner, full * groupSize, axis),
        [outer, rest, inner],
        middleRows(quantized.min, outer, groups, inner, full, groups),
        middleRows(quantized.step, outer, groups, inner, full, groups),
        [outer, 1, inner],
      ),
    );
  }
  const joined = parts.length === 2 ? g.concat(parts, 1) : parts[0]!;
  if (!layout.permutation) return g.reshape(joined, [...shape]);
  const inverse = layout.permutation.map((_, d) => layout.permutation!.indexOf(d));
  return g.transpose(g.reshape(joined, layout.permutation.map((p) => shape[p]!)), inverse);
}

function isFinite32(values: Float32Array): boolean {
  for (let i = 0; i < values.length; i++) if (!Number.isFinite(values[i]!)) return false;
  return true;
}

/** Whether `quantizeWeights` stores `info` as uint8: a float32 weight (not a computed constant), rank >= 2, large enough. */
function worthQuantizing(info: InitializerInfo, minQuantizedSize: number): boolean {
  const size = info.shape.reduce((a, b) => a * b, 1);
  return info.dtype === 'float32' && info.origin === 'weight' && info.shape.length >= 2 && size >= Math.max(minQuantizedSize, 1);
}

/**
 * Stores the large float32 weights of `g` as uint8 with per-group float32 min and step (see the module comment and
 * `groupLayout`), each behind a dequantisation subgraph whose output keeps the weight's name, so the nodes that read
 * it are unchanged. Left as float32: computed constants (`constant()`: position tables, masks), tensors of rank
 * below 2 or with fewer than `minQuantizedSize` values, tensors holding a non-finite value, and depthwise
 * convolution kernels (see `groupLayout`).
 *
 * @example
 * ```ts
 * const { encoder, decoderStep } = buildOnnxGraphs(model);
 * const report = quantizeWeights(encoder, { groupSize: 32 });
 * console.log(`${report.tensors.length} weights in 8 bits: ${report.bytesBefore} -> ${report.bytesAfter} bytes`);
 * ```
 */
export function quantizeWeights(g: OnnxGraph, options: QuantizeWeightsOptions = {}): QuantizeReport {
  const { groupSize, minQuantizedSize } = checkQuantizeOptions(options);
  const bytesBefore = g.initializerBytes;
  const tensors: QuantizedTensorReport[] = [];
  let values = 0;
  for (const info of g.initializerList()) {
    if (!worthQuantizing(info, minQuantizedSize)) continue;
    const readers = g.readersOf(info.name);
    if (readers.length === 0) continue;
    const original = g.initializerData(info.name);
    if (!isFinite32(original)) continue;
    const layout = groupLayout(info.shape, readers, groupSize);
    if (!layout) continue;
    const data = layout.permutation ? transposeValues(original, info.shape, layout.permutation).values : original;
    const quantized = quantizeGroups(data, layout, groupSize);
    let maxError = 0;
    const groups = Math.ceil(layout.axis / groupSize);
    for (let a = 0, e = 0; a < layout.outer; a++) {
      for (let j = 0; j < layout.axis; j++) {
        for (let b = 0; b < layout.inner; b++, e++) {
          const k = (a * groups + Math.floor(j / groupSize)) * layout.inner + b;
          maxError = Math.max(maxError, Math.abs(dequantizedValue(quantized.q[e]!, quantized.min[k]!, quantized.step[k]!) - data[e]!));
        }
      }
    }
    g.replaceInitializer(info.name, () => dequantizeSubgraph(g, info.name, info.shape, layout, groupSize, quantized));
    tensors.push({ name: info.name, shape: [...info.shape], layout, groups: quantized.min.length, maxError });
    values += data.length;
  }
  return { groupSize, minQuantizedSize, tensors, values, bytesBefore, bytesAfter: g.initializerBytes };
}
