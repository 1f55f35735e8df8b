import * as tf from '@tensorflow/tfjs-core';
import type * as tfl from '@tensorflow/tfjs-layers';
import { S2Layer, ShapeError, type ForwardOptions, type S2LayerArgs } from '@s2cpnet/core';
import { disposeLayerTree, ConvBn } from './conv-bn';

export interface BottleneckArgs extends S2LayerArgs {
  inputChannels: number;
  /** Width of the 1x1-reduced and 3x3 convs. */
  midChannels: number;
  outputChannels: number;
  /** 1 or 2. */
  strides?: number;
  /** Which conv carries the stride (see `ResNet50Config.strideOn`). Default `3x3`. */
  strideOn?: '1x1' | '3x3';
  /** Use a 1x1 conv + BN on the shortcut. Default: when the stride is not 1 or the channel counts differ. */
  projection?: boolean;
  batchNormEpsilon?: number;
}

/**
 * ResNet bottleneck: 1x1 (reduce) -> 3x3 -> 1x1 (expand), each followed by batch norm, ReLU after the first two;
 * the shortcut (identity, or 1x1 conv + BN with the block's stride) is added before the final ReLU.
 */
export class Bottleneck extends S2Layer {
  static readonly className = 'Bottleneck';
  readonly inputChannels: number;
  readonly midChannels: number;
  readonly outputChannels: number;
  readonly strides: number;
  readonly strideOn: '1x1' | '3x3';
  readonly projection: boolean;
  readonly batchNormEpsilon: number;
  readonly reduce: ConvBn;
  readonly spatial: ConvBn;
  readonly expand: ConvBn;
  readonly shortcut: ConvBn | null;

  constructor(args: BottleneckArgs) {
    super(args);
    this.inputChannels = args.inputChannels;
    this.midChannels = args.midChannels;
    this.outputChannels = args.outputChannels;
    this.strides = args.strides ?? 1;
    this.strideOn = args.strideOn ?? '3x3';
    this.projection = args.projection ?? (this.strides !== 1 || this.inputChannels !== this.outputChannels);
    this.batchNormEpsilon = args.batchNormEpsilon ?? 1e-5;
    if (!this.projection && (this.strides !== 1 || this.inputChannels !== this.outputChannels)) {
      throw new ShapeError('Bottleneck', 'projection', `an identity shortcut needs stride 1 and inputChannels == outputChannels`);
    }
    const eps = this.batchNormEpsilon;
    const reduceStride = this.strideOn === '1x1' ? this.strides : 1;
    const spatialStride = this.strideOn === '3x3' ? this.strides : 1;
    this.reduce = this.child(
      'conv1',
      new ConvBn({ inputChannels: this.inputChannels, filters: this.midChannels, kernelSize: 1, strides: reduceStride, padding: 0, batchNormEpsilon: eps, seed: this.childSeed('conv1') }),
    );
    this.spatial = this.child(
      'conv2',
      new ConvBn({ inputChannels: this.midChannels, filters: this.midChannels, kernelSize: 3, strides: spatialStride, padding: 1, batchNormEpsilon: eps, seed: this.childSeed('conv2') }),
    );
    this.expand = this.child(
      'conv3',
      new ConvBn({ inputChannels: this.midChannels, filters: this.outputChannels, kernelSize: 1, padding: 0, activation: 'linear', batchNormEpsilon: eps, seed: this.childSeed('conv3') }),
    );
    this.shortcut = this.projection
      ? this.child(
          'shortcut',
          new ConvBn({ inputChannels: this.inputChannels, filters: this.outputChannels, kernelSize: 1, strides: this.strides, padding: 0, activation: 'linear', batchNormEpsilon: eps, seed: this.childSeed('shortcut') }),
        )
      : null;
  }

  override build(): void {
    for (const layer of this.children().values()) (layer as ConvBn).ensureBuilt([null, null, null, (layer as ConvBn).inputChannels]);
    this.built = true;
  }

  forward(x: tf.Tensor4D, options?: ForwardOptions): tf.Tensor4D {
    this.ensureBuilt([null, null, null, this.inputChannels]);
    return tf.tidy(() => {
      const residual = this.expand.forward(this.spatial.forward(this.reduce.forward(x, options), options), options);
      const skip = this.shortcut ? this.shortcut.forward(x, options) : x;
      return tf.relu(tf.add(residual, skip)) as tf.Tensor4D;
    });
  }

  /** Output side for a square input of side `size`. */
  outputSize(size: number): number {
    return this.expand.outputSize(this.spatial.outputSize(this.reduce.outputSize(size)));
  }

  /** Multiply-adds per image for a square input of side `size`. */
  multiplyAdds(size: number): number {
    const afterReduce = this.reduce.outputSize(size);
    const afterSpatial = this.spatial.outputSize(afterReduce);
    return (
      this.reduce.multiplyAdds(size) +
      this.spatial.multiplyAdds(afterReduce) +
      this.expand.multiplyAdds(afterSpatial) +
      (this.shortcut ? this.shortcut.multiplyAdds(size) : 0)
    );
  }

  override call(inputs: tf.Tensor | tf.Tensor[], kwargs: Record<string, unknown>): tf.Tensor {
    return this.forward((Array.isArray(inputs) ? inputs[0]! : inputs) as tf.Tensor4D, kwargs as ForwardOptions);
  }

  override computeOutputShape(inputShape: tfl.Shape): tfl.Shape {
    const [b, h, w] = inputShape;
    return [b ?? null, h == null ? null : this.outputSize(h), w == null ? null : this.outputSize(w), this.outputChannels];
  }

  override dispose(): ReturnType<S2Layer['dispose']> {
    return disposeLayerTree(this);
  }

  override getConfig(): tf.serialization.ConfigDict {
    return {
      ...super.getConfig(),
      inputChannels: this.inputChannels,
      midChannels: this.midChannels,
      outputChannels: this.outputChannels,
      strides: this.strides,
      strideOn: this.strideOn,
      projection: this.projection,
      batchNormEpsilon: this.batchNormEpsilon,
      seed: this.seed,
    };
  }
}
