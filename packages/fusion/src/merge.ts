import * as tf from '@tensorflow/tfjs-core';
import type * as tfl from '@tensorflow/tfjs-layers';
import { BatchNorm, Conv2D, LayerNorm, S2Layer, type ForwardOptions, type S2LayerArgs } from '@s2cpnet/core';

/** A block of the multi-granularity merge: grid [B,G,G,2d] -> [B,G,G,2d]. */
export interface MergeBlock extends S2Layer {
  forward(x: tf.Tensor4D, options?: ForwardOptions): tf.Tensor4D;
  /** Multiply-adds on a height x width grid (one sample). */
  multiplyAdds(height: number, width: number): number;
}

export interface MergeBlockArgs extends S2LayerArgs {
  /** Channels of the grid (2d). */
  channels: number;
}

/**
 * Merge block of CVFF (spec section 5, step 3): `ResBlock(x) = ReLU(x + BN(Conv3x3(x)))` on the G x G grid.
 * The convolution has no bias: the batch norm's offset right after it makes one redundant.
 *
 * Weights: `conv/kernel`, `norm/{gamma,beta,moving_mean,moving_variance}`.
 */
export class ResidualMergeBlock extends S2Layer implements MergeBlock {
  static readonly className = 'ResidualMergeBlock';
  readonly channels: number;
  readonly conv: Conv2D;
  readonly norm: BatchNorm;

  constructor(args: MergeBlockArgs) {
    super(args);
    this.channels = args.channels;
    this.conv = this.child('conv', this.convolution('conv', this.channels, this.channels, 3));
    this.norm = this.child('norm', new BatchNorm({ channels: this.channels, seed: this.childSeed('norm') }));
  }

  /** A bias-free 'same' convolution (a batch norm follows every one). */
  private convolution(name: string, inputChannels: number, filters: number, kernelSize: number): Conv2D {
    return new Conv2D({ inputChannels, filters, kernelSize, padding: 'same', useBias: false, seed: this.childSeed(name) });
  }

  override build(): void {
    this.buildChild(this.conv, [null, null, null, this.channels]);
    this.buildChild(this.norm, [null, null, null, this.channels]);
    this.built = true;
  }

  forward(x: tf.Tensor4D, options?: ForwardOptions): tf.Tensor4D {
    this.ensureBuilt([null, null, null, this.channels]);
    return tf.tidy(() => tf.relu(tf.add(x, this.norm.forward(this.conv.forward(x), options))) as tf.Tensor4D);
  }

  override call(inputs: tf.Tensor | tf.Tensor[], kwargs: Record<string, unknown>): tf.Tensor {
    return this.forward((Array.isArray(inputs) ? inputs[0]! : inputs) as tf.Tensor4D, kwargs as ForwardOptions);
  }

  override computeOutputShape(inputShape: tfl.Shape): tfl.Shape {
    return inputShape;
  }

  multiplyAdds(height: number, width: number): number {
    return this.conv.multiplyAdds(height, width);
  }

  override getConfig(): tf.serialization.ConfigDict {
    return { ...super.getConfig(), channels: this.channels, seed: this.seed };
  }
}

/**
 * Merge block of the authors' released code (spec section 9): a ResNet bottleneck, 1x1 (C -> C/4), 3x3
 * (C/4 -> C/4), 1x1 (C/4 -> C), each followed by batch norm (ReLU after the first two), a residual sum and
 * ReLU, then LayerNorm over channels: `LN(ReLU(x + BN(Conv1x1(ReLU(BN(Conv3x3(ReLU(BN(Conv1x1(x))))))))))`.
 * The bottleneck width C/4 is our choice (ResNet's reduction; the spec does not give it).
 *
 * Weights: `{reduce,spatial,expand}/kernel`, `{reduce,spatial,expand}Norm/*`, `layerNorm/{gamma,beta}`.
 */
export class BottleneckMergeBlock extends S2Layer implements MergeBlock {
  static readonly className = 'BottleneckMergeBlock';
  readonly channels: number;
  readonly bottleneckChannels: number;
  readonly reduce: Conv2D;
  readonly reduceNorm: BatchNorm;
  readonly spatial: Conv2D;
  readonly spatialNorm: BatchNorm;
  readonly expand: Conv2D;
  readonly expandNorm: BatchNorm;
  readonly layerNorm: LayerNorm;

  constructor(args: MergeBlockArgs) {
    super(args);
    this.channels = args.channels;
    this.bottleneckChannels = Math.max(1, Math.floor(this.channels / 4));
    const c = this.channels;
    const b = this.bottleneckChannels;
    const batchNorm = (name: string, channels: number) => this.child(name, new BatchNorm({ channels, seed: this.childSeed(name) }));
    this.reduce = this.child('reduce', this.convolution('reduce', c, b, 1));
    this.reduceNorm = batchNorm('reduceNorm', b);
    this.spatial = this.child('spatial', this.convolution('spatial', b, b, 3));
    this.spatialNorm = batchNorm('spatialNorm', b);
    this.expand = this.child('expand', this.convolution('expand', b, c, 1));
    this.expandNorm = batchNorm('expandNorm', c);
    this.layerNorm = this.child('layerNorm', new LayerNorm({ dim: c, seed: this.childSeed('layerNorm') }));
  }

  /** A bias-free 'same' convolution (a batch norm follows every one). */
  private convolution(name: string, inputChannels: number, filters: number, kernelSize: number): Conv2D {
    return new Conv2D({ inputChannels, filters, kernelSize, padding: 'same', useBias: false, seed: this.childSeed(name) });
  }

  override build(): void {
    for (const layer of this.children().values()) {
      if (layer instanceof Conv2D) this.buildChild(layer, [null, null, null, layer.inputChannels]);
      else if (layer instanceof S2Layer) layer.ensureBuilt([null, null, null, null]);
    }
    this.built = true;
  }

  forward(x: tf.Tensor4D, options?: ForwardOptions): tf.Tensor4D {
    this.ensureBuilt([null, null, null, this.channels]);
    return tf.tidy(() => {
      const reduced = tf.relu(this.reduceNorm.forward(this.reduce.forward(x), options)) as tf.Tensor4D;
      const spatial = tf.relu(this.spatialNorm.forward(this.spatial.forward(reduced), options)) as tf.Tensor4D;
      const expanded = this.expandNorm.forward(this.expand.forward(spatial), options);
      return this.layerNorm.forward(tf.relu(tf.add(x, expanded))) as tf.Tensor4D;
    });
  }

  override call(inputs: tf.Tensor | tf.Tensor[], kwargs: Record<string, unknown>): tf.Tensor {
    return this.forward((Array.isArray(inputs) ? inputs[0]! : inputs) as tf.Tensor4D, kwargs as ForwardOptions);
  }

  override computeOutputShape(inputShape: tfl.Shape): tfl.Shape {
    return inputShape;
  }

  multiplyAdds(height: number, width: number): number {
    return this.reduce.multiplyAdds(height, width) + this.spatial.multiplyAdds(height, width) + this.expand.multiplyAdds(height, width);
  }

  override getConfig(): tf.serialization.ConfigDict {
    return { ...super.getConfig(), channels: this.channels, seed: this.seed };
  }
}
