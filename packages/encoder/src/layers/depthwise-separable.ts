import * as tf from '@tensorflow/tfjs-core';
import type * as tfl from '@tensorflow/tfjs-layers';
import { S2Layer, type ForwardOptions, type S2LayerArgs } from '@s2cpnet/core';
import { disposeLayerTree, ConvBn } from './conv-bn';

export interface DepthwiseSeparableArgs extends S2LayerArgs {
  inputChannels: number;
  outputChannels: number;
  strides?: number;
  batchNormEpsilon?: number;
}

/** MobileNetV1 block: depthwise 3x3 (TF 'same' padding) + BN + ReLU6, then pointwise 1x1 + BN + ReLU6. */
export class DepthwiseSeparable extends S2Layer {
  static readonly className = 'DepthwiseSeparable';
  readonly inputChannels: number;
  readonly outputChannels: number;
  readonly strides: number;
  readonly batchNormEpsilon: number;
  readonly depthwiseConv: ConvBn;
  readonly pointwiseConv: ConvBn;

  constructor(args: DepthwiseSeparableArgs) {
    super(args);
    this.inputChannels = args.inputChannels;
    this.outputChannels = args.outputChannels;
    this.strides = args.strides ?? 1;
    this.batchNormEpsilon = args.batchNormEpsilon ?? 1e-3;
    const eps = this.batchNormEpsilon;
    this.depthwiseConv = this.child(
      'depthwise',
      new ConvBn({ inputChannels: this.inputChannels, filters: this.inputChannels, kernelSize: 3, strides: this.strides, padding: 'same', depthwise: true, activation: 'relu6', batchNormEpsilon: eps, seed: this.childSeed('depthwise') }),
    );
    this.pointwiseConv = this.child(
      'pointwise',
      new ConvBn({ inputChannels: this.inputChannels, filters: this.outputChannels, kernelSize: 1, padding: 0, activation: 'relu6', batchNormEpsilon: eps, seed: this.childSeed('pointwise') }),
    );
  }

  override build(): void {
    this.depthwiseConv.ensureBuilt([null, null, null, this.inputChannels]);
    this.pointwiseConv.ensureBuilt([null, null, null, this.inputChannels]);
    this.built = true;
  }

  forward(x: tf.Tensor4D, options?: ForwardOptions): tf.Tensor4D {
    this.ensureBuilt([null, null, null, this.inputChannels]);
    return tf.tidy(() => this.pointwiseConv.forward(this.depthwiseConv.forward(x, options), options));
  }

  outputSize(size: number): number {
    return this.pointwiseConv.outputSize(this.depthwiseConv.outputSize(size));
  }

  multiplyAdds(size: number): number {
    return this.depthwiseConv.multiplyAdds(size) + this.pointwiseConv.multiplyAdds(this.depthwiseConv.outputSize(size));
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
      outputChannels: this.outputChannels,
      strides: this.strides,
      batchNormEpsilon: this.batchNormEpsilon,
      seed: this.seed,
    };
  }
}
