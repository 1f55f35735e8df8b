import * as tf from '@tensorflow/tfjs-core';
import type * as tfl from '@tensorflow/tfjs-layers';
import { S2Layer, type ForwardOptions, type LayerVariable, type S2LayerArgs } from '../layer';
import { assertRank, } from '../shapes';
import { ShapeError } from '../errors';
import type { WeightInit } from '../init';

export interface Conv2DArgs extends S2LayerArgs {
  inputChannels: number;
  filters: number;
  kernelSize: number;
  strides?: number;
  padding?: 'same' | 'valid';
  useBias?: boolean;
  /** Depthwise convolution (MobileNet): one filter per input channel; `filters` must equal `inputChannels`. */
  depthwise?: boolean;
  kernelInit?: WeightInit;
}

/** 2-D convolution, NHWC, TF 'same'/'valid' padding; optionally depthwise. */
export class Conv2D extends S2Layer {
  static readonly className = 'S2CPConv2D';
  readonly inputChannels: number;
  readonly filters: number;
  readonly kernelSize: number;
  readonly strides: number;
  readonly padding: 'same' | 'valid';
  readonly useBias: boolean;
  readonly depthwise: boolean;
  readonly kernelInit: WeightInit;
  kernel!: LayerVariable;
  bias: LayerVariable | null = null;

  constructor(args: Conv2DArgs) {
    super(args);
    this.inputChannels = args.inputChannels;
    this.filters = args.filters;
    this.kernelSize = args.kernelSize;
    this.strides = args.strides ?? 1;
    this.padding = args.padding ?? 'same';
    this.useBias = args.useBias ?? true;
    this.depthwise = args.depthwise ?? false;
    this.kernelInit = args.kernelInit ?? { kind: 'he-normal' };
    if (this.depthwise && this.filters !== this.inputChannels) {
      throw new ShapeError('Conv2D', 'filters', `a depthwise conv needs filters == inputChannels (${this.filters} vs ${this.inputChannels})`);
    }
  }

  override build(): void {
    const k = this.kernelSize;
    const shape = this.depthwise ? [k, k, this.inputChannels, 1] : [k, k, this.inputChannels, this.filters];
    this.kernel = this.addSeededWeight('kernel', shape, this.kernelInit);
    if (this.useBias) this.bias = this.addSeededWeight('bias', [this.filters], { kind: 'zeros' });
    this.built = true;
  }

  forward(x: tf.Tensor4D): tf.Tensor4D {
    this.ensureBuilt([null, null, null, this.inputChannels]);
    assertRank(`Conv2D(${this.name})`, 'x', x, 4);
    if (x.shape[3] !== this.inputChannels) {
      throw new ShapeError(`Conv2D(${this.name})`, 'x', `expected ${this.inputChannels} channels, found ${x.shape[3]}`);
    }
    return tf.tidy(() => {
      const w = this.kernel.read() as tf.Tensor4D;
      let y = this.depthwise
        ? tf.depthwiseConv2d(x, w, this.strides, this.padding)
        : tf.conv2d(x, w, this.strides, this.padding);
      if (this.bias) y = tf.add(y, this.bias.read());
      return y;
    });
  }

  override call(inputs: tf.Tensor | tf.Tensor[]): tf.Tensor {
    return this.forward((Array.isArray(inputs) ? inputs[0]! : inputs) as tf.Tensor4D);
  }

  override computeOutputShape(inputShape: tfl.Shape): tfl.Shape {
    const [b, h, w] = inputShape;
    const out = (n: number | null) =>
      n === null ? null : this.padding === 'same' ? Math.ceil(n / this.strides) : Math.floor((n - this.kernelSize) / this.strides) + 1;
    return [b ?? null, out(h ?? null), out(w ?? null), this.filters];
  }

  /** Multiply-adds of one forward pass on an input of height x width (per image). */
  multiplyAdds(height: number, width: number): number {
    const [, oh, ow] = this.computeOutputShape([1, height, width, this.inputChannels]) as number[];
    const perOutput = this.kernelSize * this.kernelSize * (this.depthwise ? 1 : this.inputChannels);
    return oh! * ow! * this.filters * perOutput;
  }

  override getConfig(): tf.serialization.ConfigDict {
    return {
      ...super.getConfig(),
      inputChannels: this.inputChannels,
      filters: this.filters,
      kernelSize: this.kernelSize,
      strides: this.strides,
      padding: this.padding,
      useBias: this.useBias,
      depthwise: this.depthwise,
      seed: this.seed,
    };
  }
}

export interface BatchNormArgs extends S2LayerArgs {
  channels: number;
  momentum?: number;
  epsilon?: number;
}

/**
 * Batch normalisation over N,H,W (or all but the last axis). In training mode and when trainable it uses batch
 * statistics and updates the moving averages; otherwise (inference, or frozen) it uses the moving averages, so a
 * frozen backbone runs in inference mode as the spec asks.
 */
export class BatchNorm extends S2Layer {
  static readonly className = 'S2CPBatchNorm';
  readonly channels: number;
  readonly momentum: number;
  readonly epsilon: number;
  gamma!: LayerVariable;
  beta!: LayerVariable;
  movingMean!: LayerVariable;
  movingVariance!: LayerVariable;

  constructor(args: BatchNormArgs) {
    super(args);
    this.channels = args.channels;
    // 0.9 (PyTorch's update rate 0.1): the moving averages must keep up with weights that move fast in short CPU runs
    this.momentum = args.momentum ?? 0.9;
    this.epsilon = args.epsilon ?? 1e-3;
  }

  override build(): void {
    this.gamma = this.addSeededWeight('gamma', [this.channels], { kind: 'ones' });
    this.beta = this.addSeededWeight('beta', [this.channels], { kind: 'zeros' });
    this.movingMean = this.addSeededWeight('moving_mean', [this.channels], { kind: 'zeros' }, false);
    this.movingVariance = this.addSeededWeight('moving_variance', [this.channels], { kind: 'ones' }, false);
    this.built = true;
  }

  forward(x: tf.Tensor, options?: ForwardOptions): tf.Tensor {
    this.ensureBuilt([null, this.channels]);
    if (x.shape[x.rank - 1] !== this.channels) {
      throw new ShapeError(`BatchNorm(${this.name})`, 'x', `expected ${this.channels} channels, found ${x.shape[x.rank - 1]}`);
    }
    const useBatchStatistics = Boolean(options?.training) && this.trainable;
    return tf.tidy(() => {
      if (!useBatchStatistics) {
        return tf.batchNorm(x, this.movingMean.read(), this.movingVariance.read(), this.beta.read(), this.gamma.read(), this.epsilon);
      }
      const axes = Array.from({ length: x.rank - 1 }, (_, i) => i);
      const { mean, variance } = tf.moments(x, axes);
      const count = x.size / this.channels;
      tf.tidy(() => {
        const unbiased = tf.mul(variance, count / Math.max(count - 1, 1));
        const m = this.momentum;
        this.movingMean.write(tf.add(tf.mul(this.movingMean.read(), m), tf.mul(mean, 1 - m)));
        this.movingVariance.write(tf.add(tf.mul(this.movingVariance.read(), m), tf.mul(unbiased, 1 - m)));
      });
      return tf.batchNorm(x, mean, variance, this.beta.read(), this.gamma.read(), this.epsilon);
    });
  }

  override call(inputs: tf.Tensor | tf.Tensor[], kwargs: Record<string, unknown>): tf.Tensor {
    return this.forward(Array.isArray(inputs) ? inputs[0]! : inputs, kwargs as ForwardOptions);
  }

  override computeOutputShape(inputShape: tfl.Shape): tfl.Shape {
    return inputShape;
  }

  override getConfig(): tf.serialization.ConfigDict {
    return { ...super.getConfig(), channels: this.channels, momentum: this.momentum, epsilon: this.epsilon, seed: this.seed };
  }
}
