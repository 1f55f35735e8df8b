/**
 * Float64 plain-loop reference implementations of the encoder's building blocks (test-only). They share no code with
 * the tfjs implementation: convolution, batch norm, activations, pooling and the blocks are written out as loops,
 * NHWC, so an agreement to ~1e-5 checks the layer math, the padding rules and the weight layouts.
 */
import * as tf from '@tensorflow/tfjs-core';
import type { Bottleneck } from '../layers/bottleneck';
import type { ConvBn } from '../layers/conv-bn';
import type { DepthwiseSeparable } from '../layers/depthwise-separable';
import type { MobileNetV1 } from '../mobilenet-v1';
import type { ResNet50 } from '../resnet50';

export interface Array64 {
  data: Float64Array;
  shape: number[];
}

/** Float64 values that replace a layer variable's own values in the reference (for finite differences). */
const overrides = new Map<object, Float64Array>();

export function toArray64(t: tf.Tensor | { read(): tf.Tensor }): Array64 {
  const tensor = t instanceof tf.Tensor ? t : t.read();
  const override = overrides.get(t);
  if (override) return { data: override, shape: [...tensor.shape] };
  return { data: Float64Array.from(tensor.dataSync() as Float32Array), shape: [...tensor.shape] };
}

/** Padding amounts [top, bottom, left, right] of a conv or pool. */
function paddings(h: number, w: number, k: number, stride: number, padding: 'same' | number): [number, number, number, number] {
  if (padding !== 'same') return [padding, padding, padding, padding];
  // TensorFlow's 'same': total = max((ceil(n/s) - 1) * s + k - n, 0), the smaller half on top/left.
  const total = (n: number) => Math.max((Math.ceil(n / stride) - 1) * stride + k - n, 0);
  const th = total(h);
  const tw = total(w);
  return [Math.floor(th / 2), th - Math.floor(th / 2), Math.floor(tw / 2), tw - Math.floor(tw / 2)];
}

/** Conv2D NHWC, kernel [k,k,ci,co] (or depthwise [k,k,c,1]), zero padding, optional bias. */
export function conv2dRef(x: Array64, kernel: Array64, stride: number, padding: 'same' | number, options: { depthwise?: boolean; bias?: Float64Array } = {}): Array64 {
  const [b, h, w, ci] = x.shape as [number, number, number, number];
  const k = kernel.shape[0]!;
  const co = options.depthwise ? ci : kernel.shape[3]!;
  const [pt, pb, pl, pr] = paddings(h, w, k, stride, padding);
  const oh = Math.floor((h + pt + pb - k) / stride) + 1;
  const ow = Math.floor((w + pl + pr - k) / stride) + 1;
  const out = new Float64Array(b * oh * ow * co);
  for (let n = 0; n < b; n++)
    for (let oy = 0; oy < oh; oy++)
      for (let ox = 0; ox < ow; ox++)
        for (let o = 0; o < co; o++) {
          let sum = options.bias ? options.bias[o]! : 0;
          for (let ky = 0; ky < k; ky++) {
            const iy = oy * stride + ky - pt;
            if (iy < 0 || iy >= h) continue;
            for (let kx = 0; kx < k; kx++) {
              const ix = ox * stride + kx - pl;
              if (ix < 0 || ix >= w) continue;
              const xBase = ((n * h + iy) * w + ix) * ci;
              if (options.depthwise) sum += x.data[xBase + o]! * kernel.data[(ky * k + kx) * ci + o]!;
              else for (let i = 0; i < ci; i++) sum += x.data[xBase + i]! * kernel.data[((ky * k + kx) * ci + i) * co + o]!;
            }
          }
          out[((n * oh + oy) * ow + ox) * co + o] = sum;
        }
  return { data: out, shape: [b, oh, ow, co] };
}

export interface BatchNormParams {
  gamma: Float64Array;
  beta: Float64Array;
  mean: Float64Array;
  variance: Float64Array;
  epsilon: number;
}

/** Per-channel mean and biased variance over all but the last axis. */
export function channelMoments(x: Array64): { mean: Float64Array; variance: Float64Array } {
  const c = x.shape[x.shape.length - 1]!;
  const count = x.data.length / c;
  const mean = new Float64Array(c);
  const variance = new Float64Array(c);
  for (let i = 0; i < x.data.length; i++) mean[i % c]! += x.data[i]! / count;
  for (let i = 0; i < x.data.length; i++) variance[i % c]! += (x.data[i]! - mean[i % c]!) ** 2 / count;
  return { mean, variance };
}

export function batchNormRef(x: Array64, p: BatchNormParams, statistics?: { mean: Float64Array; variance: Float64Array }): Array64 {
  const c = x.shape[x.shape.length - 1]!;
  const mean = statistics?.mean ?? p.mean;
  const variance = statistics?.variance ?? p.variance;
  const out = new Float64Array(x.data.length);
  for (let i = 0; i < x.data.length; i++) {
    const ch = i % c;
    out[i] = (p.gamma[ch]! * (x.data[i]! - mean[ch]!)) / Math.sqrt(variance[ch]! + p.epsilon) + p.beta[ch]!;
  }
  return { data: out, shape: x.shape };
}

export function mapRef(x: Array64, f: (v: number) => number): Array64 {
  return { data: x.data.map(f), shape: x.shape };
}

export const reluRef = (x: Array64) => mapRef(x, (v) => Math.max(v, 0));
export const relu6Ref = (x: Array64) => mapRef(x, (v) => Math.min(Math.max(v, 0), 6));

export function addRef(a: Array64, b: Array64): Array64 {
  return { data: a.data.map((v, i) => v + b.data[i]!), shape: a.shape };
}

/** Max pool k x k / stride with symmetric zero padding (valid after a ReLU). */
export function maxPoolRef(x: Array64, k: number, stride: number, pad: number): Array64 {
  const [b, h, w, c] = x.shape as [number, number, number, number];
  const oh = Math.floor((h + 2 * pad - k) / stride) + 1;
  const ow = Math.floor((w + 2 * pad - k) / stride) + 1;
  const out = new Float64Array(b * oh * ow * c);
  for (let n = 0; n < b; n++)
    for (let oy = 0; oy < oh; oy++)
      for (let ox = 0; ox < ow; ox++)
        for (let ch = 0; ch < c; ch++) {
          let m = -Infinity;
          for (let ky = 0; ky < k; ky++)
            for (let kx = 0; kx < k; kx++) {
              const iy = oy * stride + ky - pad;
              const ix = ox * stride + kx - pad;
              const v = iy < 0 || iy >= h || ix < 0 || ix >= w ? 0 : x.data[((n * h + iy) * w + ix) * c + ch]!;
              m = Math.max(m, v);
            }
          out[((n * oh + oy) * ow + ox) * c + ch] = m;
        }
  return { data: out, shape: [b, oh, ow, c] };
}

export function bnParamsOf(unit: ConvBn): BatchNormParams {
  return {
    gamma: toArray64(unit.bn.gamma).data,
    beta: toArray64(unit.bn.beta).data,
    mean: toArray64(unit.bn.movingMean).data,
    variance: toArray64(unit.bn.movingVariance).data,
    epsilon: unit.batchNormEpsilon,
  };
}

/** What a training-mode reference pass computed for one unit: the batch statistics it normalised with. */
export interface UnitTrace {
  unit: ConvBn;
  batchMean?: Float64Array;
  batchVariance?: Float64Array;
  count?: number;
}

/** ConvBn in float64. `training`: batch statistics (biased variance) as a trainable layer's training call uses. */
export function convBnRef(x: Array64, unit: ConvBn, training: boolean, trace?: UnitTrace[]): Array64 {
  const z = conv2dRef(x, toArray64(unit.conv.kernel), unit.strides, unit.padding, { depthwise: unit.depthwise });
  let y: Array64;
  if (training) {
    const stats = channelMoments(z);
    trace?.push({ unit, batchMean: stats.mean, batchVariance: stats.variance, count: z.data.length / unit.filters });
    y = batchNormRef(z, bnParamsOf(unit), stats);
  } else {
    y = batchNormRef(z, bnParamsOf(unit));
  }
  if (unit.activation === 'relu') return reluRef(y);
  if (unit.activation === 'relu6') return relu6Ref(y);
  return y;
}

export function bottleneckRef(x: Array64, block: Bottleneck, training: boolean, trace?: UnitTrace[]): Array64 {
  const a = convBnRef(x, block.reduce, training, trace);
  const b = convBnRef(a, block.spatial, training, trace);
  const c = convBnRef(b, block.expand, training, trace);
  const skip = block.shortcut ? convBnRef(x, block.shortcut, training, trace) : x;
  return reluRef(addRef(c, skip));
}

export function depthwiseSeparableRef(x: Array64, block: DepthwiseSeparable, training: boolean): Array64 {
  return convBnRef(convBnRef(x, block.depthwiseConv, training), block.pointwiseConv, training);
}

/** Nearest-neighbour upsampling by an integer factor. */
export function upsampleRef(x: Array64, factor: number): Array64 {
  const [b, h, w, c] = x.shape as [number, number, number, number];
  const out = new Float64Array(b * h * factor * w * factor * c);
  for (let n = 0; n < b; n++)
    for (let y = 0; y < h * factor; y++)
      for (let xx = 0; xx < w * factor; xx++)
        for (let ch = 0; ch < c; ch++) out[((n * h * factor + y) * w * factor + xx) * c + ch] = x.data[((n * h + Math.floor(y / factor)) * w + Math.floor(xx / factor)) * c + ch]!;
  return { data: out, shape: [b, h * factor, w * factor, c] };
}

/** A reduced or full ResNet50 trunk in float64 (native grid). */
export function resnetRef(net: ResNet50, x: Array64, training = false): Array64 {
  let y = maxPoolRef(convBnRef(x, net.stem, training), 3, 2, 1);
  for (const stage of net.stages) for (const block of stage) y = bottleneckRef(y, block, training);
  return y;
}

/** A MobileNetV1 trunk in float64 (native grid). */
export function mobilenetRef(net: MobileNetV1, x: Array64, training = false): Array64 {
  let y = convBnRef(x, net.stem, training);
  for (const block of net.blocks) y = depthwiseSeparableRef(y, block, training);
  return y;
}

/**
 * Largest relative error between tfjs' analytic input gradient of Σ f(x) and central differences of the float64
 * reference `g` (step 1e-6: no ReLU kink is crossed and float32 rounding plays no part), over the given elements;
 * errors are relative to max(|numeric|, 1% of the largest analytic entry).
 */
export function inputGradientVsFloat64(f: (x: tf.Tensor4D) => tf.Tensor, g: (x: Array64) => Array64, x: tf.Tensor4D, elements: readonly number[]): number {
  const analytic = tf.tidy(() => tf.grad((input: tf.Tensor) => tf.sum(f(input as tf.Tensor4D)))(x)).dataSync().slice();
  const base = toArray64(x);
  const scale = Math.max(...Array.from(analytic, Math.abs));
  const total = (a: Array64) => a.data.reduce((s, v) => s + v, 0);
  const h = 1e-6;
  let worst = 0;
  for (const index of elements) {
    const plus = { data: base.data.slice(), shape: base.shape };
    const minus = { data: base.data.slice(), shape: base.shape };
    plus.data[index]! += h;
    minus.data[index]! -= h;
    const numeric = (total(g(plus)) - total(g(minus))) / (2 * h);
    worst = Math.max(worst, Math.abs(numeric - analytic[index]!) / Math.max(Math.abs(numeric), 1e-2 * scale));
  }
  return worst;
}

/**
 * Like `inputGradientVsFloat64`, for the gradient of Σ f(x) with respect to one layer variable (analytic from
 * `tf.variableGrads`; numeric from the float64 reference with that variable's entries moved by ±1e-6).
 */
export function weightGradientVsFloat64(
  f: () => tf.Tensor,
  g: () => Array64,
  variable: { read(): tf.Tensor },
  elements: readonly number[],
): number {
  const v = variable.read() as tf.Variable;
  const { value, grads } = tf.variableGrads(() => tf.sum(f()) as tf.Scalar, [v]);
  const analytic = grads[v.name]!.dataSync().slice();
  value.dispose();
  tf.dispose(grads);
  const base = Float64Array.from(v.dataSync() as Float32Array);
  const scale = Math.max(...Array.from(analytic, Math.abs));
  const total = (a: Array64) => a.data.reduce((s, x) => s + x, 0);
  const h = 1e-6;
  let worst = 0;
  try {
    for (const index of elements.filter((e) => e < base.length)) {
      const plus = base.slice();
      plus[index]! += h;
      overrides.set(variable, plus);
      const up = total(g());
      const minus = base.slice();
      minus[index]! -= h;
      overrides.set(variable, minus);
      const down = total(g());
      const numeric = (up - down) / (2 * h);
      worst = Math.max(worst, Math.abs(numeric - analytic[index]!) / Math.max(Math.abs(numeric), 1e-2 * scale));
    }
  } finally {
    overrides.delete(variable);
  }
  return worst;
}
