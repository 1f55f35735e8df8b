import type * as tf from '@tensorflow/tfjs-core';
import type { Bottleneck, ConvBn, DepthwiseSeparable, GridPlan, MobileNetV1, ResNet50 } from '@s2cpnet/encoder';
import type { OnnxGraph, Value } from '../graph';
import type { EncoderExporter } from './registry';

/**
 * ONNX exporters of the encoder backbones (`@s2cpnet/encoder`'s ResNet50 and MobileNetV1), inference mode.
 *
 * The graph works in NCHW, ONNX's native layout: the NHWC pixels are transposed once at the start and the features
 * back to NHWC once at the end. Every ConvBn becomes one `Conv` with a bias: batch norm is folded into the kernel
 * with the moving statistics, with the same float32 formula the encoder's own inference path uses
 * (`scale = gamma / sqrt(variance + eps)`, `kernel * scale`, `beta - mean * scale`), so the ONNX weights are the
 * very values tfjs convolves with. Spatial sizes are static (the encoder's `inputSize`), which lets TF's asymmetric
 * 'same' padding be written as explicit `pads`; only the batch dimension is dynamic.
 */

/** A feature map inside an exported backbone: an NCHW value and its (square, static) spatial side. */
export interface SpatialValue {
  value: Value;
  size: number;
}

/** Why an exporter cannot write a layer: names the layer and the option. */
function unsupported(layer: string, option: string, found: unknown, expected: string): Error {
  return new Error(`ONNX export of ${layer}: ${option} ${JSON.stringify(found)} is not supported (expected ${expected})`);
}

/** Explicit ONNX pads [top, left, bottom, right] and output side of a square conv or pool, TF's 'same' or symmetric. */
export function convPads(
  layerName: string,
  size: number,
  kernelSize: number,
  strides: number,
  padding: 'same' | number,
): { pads: [number, number, number, number]; outputSize: number } {
  if (padding === 'same') {
    // TF 'same': output ceil(in / stride); the odd pixel of padding goes to the bottom/right.
    const outputSize = Math.ceil(size / strides);
    const total = Math.max((outputSize - 1) * strides + kernelSize - size, 0);
    const before = Math.floor(total / 2);
    const after = total - before;
    return { pads: [before, before, after, after], outputSize };
  }
  if (!(typeof padding === 'number' && Number.isInteger(padding) && padding >= 0)) {
    throw unsupported(layerName, 'padding', padding, "'same' or a non-negative integer");
  }
  const outputSize = Math.floor((size + 2 * padding - kernelSize) / strides) + 1;
  if (outputSize < 1) throw new Error(`ONNX export of ${layerName}: input side ${size} is too small for kernel ${kernelSize} with padding ${padding}`);
  return { pads: [padding, padding, padding, padding], outputSize };
}

interface FoldedNames {
  sources: readonly object[];
  kernel: Value;
  bias: Value;
}

/**
 * Folded weights already written per graph and unit, so a backbone exported twice into one graph (once per view,
 * say) stores its weights once; keyed on the source variables' data ids, so weights written in between are re-read.
 */
const foldedCache = new WeakMap<OnnxGraph, WeakMap<ConvBn, FoldedNames>>();

function foldedWeights(g: OnnxGraph, unit: ConvBn, label: string): { kernel: Value; bias: Value } {
  const sources = [unit.conv.kernel, unit.bn.gamma, unit.bn.beta, unit.bn.movingMean, unit.bn.movingVariance].map((v) => v.read().dataId);
  let perGraph = foldedCache.get(g);
  if (!perGraph) foldedCache.set(g, (perGraph = new WeakMap()));
  const known = perGraph.get(unit);
  if (known && known.sources.every((id, i) => id === sources[i])) return known;

  const rawKernel = unit.conv.kernel.read();
  const [kh, kw, inChannels, outOrMultiplier] = rawKernel.shape as number[];
  if (rawKernel.rank !== 4 || kh !== unit.kernelSize || kw !== unit.kernelSize) {
    throw new Error(`ONNX export of ${label}: expected a square ${unit.kernelSize}x${unit.kernelSize} kernel, found shape [${rawKernel.shape.join(', ')}]`);
  }
  const outputChannels = unit.depthwise ? inChannels! * outOrMultiplier! : outOrMultiplier!;
  if (outputChannels !== unit.filters) {
    throw new Error(`ONNX export of ${label}: kernel shape [${rawKernel.shape.join(', ')}] does not give filters = ${unit.filters}`);
  }
  const folded = foldBatchNorm(unit, rawKernel.dataSync() as Float32Array, kh!, kw!, inChannels!, outOrMultiplier!);
  const names: FoldedNames = {
    sources,
    kernel: g.initializer('kernel', folded.kernel, unit.depthwise ? [outputChannels, 1, kh!, kw!] : [outputChannels, inChannels!, kh!, kw!]),
    bias: g.initializer('bias', folded.bias, [outputChannels]),
  };
  perGraph.set(unit, names);
  return names;
}

/**
 * Batch norm folded into the kernel, already in ONNX's layout: tfjs [kh,kw,in,out] -> [out,in,kh,kw]; depthwise
 * [kh,kw,in,mult] -> [in*mult,1,kh,kw] (output channel c*mult+m, as tfjs orders them).
 *
 * Computed over plain arrays (tfjs' cpu backend broadcasts element by element: folding a full ResNet50 there takes
 * tens of seconds), rounding to float32 after every operation, in the order of ConvBn's inference path
 * (`scale = gamma / sqrt(variance + eps)`, `kernel * scale`, `beta - mean * scale`). Each float32 operation of tfjs
 * is IEEE-rounded, and rounding an exact double result of float32 operands gives that same value, so these are the
 * very values tfjs convolves with.
 */
function foldBatchNorm(
  unit: ConvBn,
  kernel: Float32Array,
  kh: number,
  kw: number,
  inChannels: number,
  last: number,
): { kernel: Float32Array; bias: Float32Array } {
  const f = Math.fround;
  const read = (v: { read(): tf.Tensor }) => v.read().dataSync() as Float32Array;
  const gamma = read(unit.bn.gamma);
  const beta = read(unit.bn.beta);
  const mean = read(unit.bn.movingMean);
  const variance = read(unit.bn.movingVariance);
  const eps = f(unit.batchNormEpsilon);
  const channels = unit.filters;
  const scale = new Float32Array(channels);
  const bias = new Float32Array(channels);
  for (let c = 0; c < channels; c++) {
    scale[c] = f(gamma[c]! / f(Math.sqrt(f(variance[c]! + eps))));
    bias[c] = f(beta[c]! - f(mean[c]! * scale[c]!));
  }
  const out = new Float32Array(kernel.length);
  const taps = kh * kw;
  // tfjs index ((y*kw + x)*in + i)*last + o, with o the output channel (or the depthwise multiplier index).
  for (let tap = 0; tap < taps; tap++) {
    for (let i = 0; i < inChannels; i++) {
      const from = (tap * inChannels + i) * last;
      for (let o = 0; o < last; o++) {
        const channel = unit.depthwise ? i * last + o : o;
        const to = unit.depthwise ? channel * taps + tap : (o * inChannels + i) * taps + tap;
        out[to] = kernel[from + o]! * scale[channel]!;
      }
    }
  }
  return { kernel: out, bias };
}

const clipBounds = new WeakMap<OnnxGraph, [Value, Value]>();

/** The scalars 0 and 6 of ReLU6's `Clip`, stored once per graph. */
function relu6Bounds(g: OnnxGraph): [Value, Value] {
  let bounds = clipBounds.get(g);
  if (!bounds) clipBounds.set(g, (bounds = [g.constant(0, [], 'relu6/min'), g.constant(6, [], 'relu6/max')]));
  return bounds;
}

/**
 * One ConvBn unit (conv + inference batch norm + activation) on an NCHW value: a `Conv` with the folded kernel and
 * bias, then `Relu` or `Clip(0, 6)`.
 */
export function exportConvBn(g: OnnxGraph, unit: ConvBn, x: SpatialValue): SpatialValue {
  const label = `ConvBn '${unit.name}'`;
  if (!(Number.isInteger(unit.strides) && unit.strides >= 1)) throw unsupported(label, 'strides', unit.strides, 'a positive integer');
  if (unit.activation !== 'relu' && unit.activation !== 'relu6' && unit.activation !== 'linear') {
    throw unsupported(label, 'activation', unit.activation, "'relu', 'relu6' or 'linear'");
  }
  const dilation = (unit.conv as { dilationRate?: unknown }).dilationRate;
  if (dilation !== undefined && dilation !== 1) throw unsupported(label, 'dilationRate', dilation, '1');
  const { pads, outputSize } = convPads(label, x.size, unit.kernelSize, unit.strides, unit.padding);
  const { kernel, bias } = foldedWeights(g, unit, label);
  let y = g.op(
    'Conv',
    [x.value, kernel, bias],
    {
      kernel_shape: [unit.kernelSize, unit.kernelSize],
      strides: [unit.strides, unit.strides],
      pads,
      dilations: [1, 1],
      group: unit.depthwise ? unit.inputChannels : 1,
    },
    'conv',
  );
  if (unit.activation === 'relu') y = g.relu(y);
  else if (unit.activation === 'relu6') y = g.op('Clip', [y, ...relu6Bounds(g)], {}, 'relu6');
  return { value: y, size: outputSize };
}

/** A ResNet bottleneck on an NCHW value: relu(conv3(conv2(conv1(x))) + shortcut(x)). */
export function exportBottleneck(g: OnnxGraph, block: Bottleneck, x: SpatialValue): SpatialValue {
  const reduced = g.scope('conv1', () => exportConvBn(g, block.reduce, x));
  const spatial = g.scope('conv2', () => exportConvBn(g, block.spatial, reduced));
  const expanded = g.scope('conv3', () => exportConvBn(g, block.expand, spatial));
  const skip = block.shortcut ? g.scope('shortcut', () => exportConvBn(g, block.shortcut!, x)) : x;
  if (skip.size !== expanded.size) {
    throw new Error(`ONNX export of Bottleneck '${block.name}': residual side ${expanded.size} and shortcut side ${skip.size} differ`);
  }
  return { value: g.relu(g.add(expanded.value, skip.value)), size: expanded.size };
}

/** A MobileNetV1 block on an NCHW value: depthwise ConvBn (group = channels), then pointwise ConvBn. */
export function exportDepthwiseSeparable(g: OnnxGraph, block: DepthwiseSeparable, x: SpatialValue): SpatialValue {
  const depthwise = g.scope('depthwise', () => exportConvBn(g, block.depthwiseConv, x));
  return g.scope('pointwise', () => exportConvBn(g, block.pointwiseConv, depthwise));
}

/** The encoder's grid policy on NCHW features: identity, nearest upsampling by an integer factor, or average pooling. */
export function exportGridResample(g: OnnxGraph, x: SpatialValue, plan: GridPlan, layerName: string): SpatialValue {
  if (x.size !== plan.nativeSize) {
    throw new Error(`ONNX export of ${layerName}: trunk output side ${x.size} differs from the grid plan's native side ${plan.nativeSize}`);
  }
  if (plan.mode === 'identity') return x;
  if (!(Number.isInteger(plan.factor) && plan.factor >= 1)) throw unsupported(layerName, 'grid factor', plan.factor, 'a positive integer');
  const f = plan.factor;
  if (plan.mode === 'upsample') {
    // Output pixel i reads input floor(i / f): exactly core's upsampleNearest (replication).
    const scales = g.constant([1, 1, f, f], [4], 'scales');
    const value = g.op('Resize', [x.value, '', scales], { mode: 'nearest', coordinate_transformation_mode: 'asymmetric', nearest_mode: 'floor' }, 'upsample');
    return { value, size: x.size * f };
  }
  if (plan.mode === 'pool') {
    const value = g.op('AveragePool', [x.value], { kernel_shape: [f, f], strides: [f, f], pads: [0, 0, 0, 0] }, 'pool');
    return { value, size: x.size / f };
  }
  throw unsupported(layerName, 'grid mode', (plan as { mode: unknown }).mode, "'identity', 'upsample' or 'pool'");
}

/** NHWC pixels -> NCHW, runs `trunk`, applies the grid policy, NCHW -> NHWC. */
function exportBackbone(
  g: OnnxGraph,
  layer: ResNet50 | MobileNetV1,
  pixels: Value,
  trunk: (x: SpatialValue) => SpatialValue,
): Value {
  const layerName = `${layer.getClassName()} '${layer.name}'`;
  const x: SpatialValue = { value: g.transpose(pixels, [0, 3, 1, 2]), size: layer.inputSize };
  const features = exportGridResample(g, trunk(x), layer.gridPlan, layerName);
  if (features.size !== layer.gridSize) {
    throw new Error(`ONNX export of ${layerName}: exported grid side ${features.size} differs from gridSize ${layer.gridSize}`);
  }
  return g.transpose(features.value, [0, 2, 3, 1]);
}

/**
 * ResNet50 (any `strideOn`, `blocksPerStage`, `baseWidth`): stem ConvBn, 3x3/2 max pool with 1 pixel of padding,
 * bottlenecks. tfjs pads with zeros before the pool, ONNX MaxPool's own padding never wins the max: the same thing
 * after a ReLU stem (values >= 0, every window holds real pixels). For a stem that can go negative the windows that
 * overlap the padding also take the max with 0 (`Max` with a constant that is 0 there and -inf elsewhere). Not a
 * `Pad` node before the pool: onnxruntime's PadFusion (basic optimisation level and above) folds a zero `Pad` into
 * MaxPool's `pads`, which changes the result (microsoft/onnxruntime#18136).
 */
export const exportResNet50: EncoderExporter<ResNet50> = (g, layer, pixels) =>
  exportBackbone(g, layer, pixels, (input) => {
    const stem = g.scope('stem', () => exportConvBn(g, layer.stem, input));
    const { pads, outputSize } = convPads(`ResNet50 '${layer.name}' max pool`, stem.size, 3, 2, 1);
    let pooled = g.op('MaxPool', [stem.value], { kernel_shape: [3, 3], strides: [2, 2], pads }, 'maxpool');
    if (layer.stem.activation !== 'relu' && layer.stem.activation !== 'relu6') {
      pooled = g.op('Max', [pooled, g.constant(zeroPaddingFloor(stem.size, outputSize, 3, 2, pads[0]), [outputSize, outputSize], 'maxpool/padding')]);
    }
    let x: SpatialValue = { value: pooled, size: outputSize };
    layer.stages.forEach((stage, s) =>
      stage.forEach((block, b) => {
        x = g.scope(`stage${s + 1}/block${b}`, () => exportBottleneck(g, block, x));
      }),
    );
    return x;
  });

/** [out, out] values: 0 where a pool window overlaps the zero padding, -inf where it holds real pixels only. */
function zeroPaddingFloor(size: number, outputSize: number, kernelSize: number, strides: number, padBefore: number): Float32Array {
  const touches = Array.from({ length: outputSize }, (_, i) => i * strides - padBefore < 0 || i * strides - padBefore + kernelSize > size);
  const floor = new Float32Array(outputSize * outputSize);
  for (let y = 0; y < outputSize; y++) for (let x = 0; x < outputSize; x++) floor[y * outputSize + x] = touches[y] || touches[x] ? 0 : -Infinity;
  return floor;
}

/** MobileNetV1 (any width): stem ConvBn with ReLU6, 13 depthwise-separable blocks, TF 'same' padding throughout. */
export const exportMobileNetV1: EncoderExporter<MobileNetV1> = (g, layer, pixels) =>
  exportBackbone(g, layer, pixels, (input) => {
    let x = g.scope('stem', () => exportConvBn(g, layer.stem, input));
    layer.blocks.forEach((block, i) => {
      x = g.scope(`block${i + 1}`, () => exportDepthwiseSeparable(g, block, x));
    });
    return x;
  });

/** The encoder exporters of the built-in backbones, by tfjs class name. */
export const builtinEncoderExporters: Record<string, EncoderExporter> = {
  ResNet50: exportResNet50,
  MobileNetV1: exportMobileNetV1,
};
