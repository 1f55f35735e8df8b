import * as tf from '@tensorflow/tfjs-core';
import type * as tfl from '@tensorflow/tfjs-layers';
import type { ForwardOptions } from '@s2cpnet/core';
import { BackboneEncoder, type BackboneArgs, type BackboneBlock } from './backbone';
import type { MobileNetV1Config, PixelNormalization } from './config';
import { ConvBn } from './layers/conv-bn';
import { DepthwiseSeparable } from './layers/depthwise-separable';

export interface MobileNetV1Args extends BackboneArgs {
  width: 0.25 | 0.5 | 0.75 | 1.0;
  batchNormEpsilon?: number;
}

/** (output channels at width 1.0, stride) of the 13 depthwise-separable blocks. */
export const MOBILENET_V1_BLOCKS: readonly (readonly [number, number])[] = [
  [64, 1], [128, 2], [128, 1], [256, 2], [256, 1], [512, 2],
  [512, 1], [512, 1], [512, 1], [512, 1], [512, 1], [1024, 2], [1024, 1],
];

/** Blocks that run at output stride <= 4 (frozen with the stem by `freeze: 'stem-stage1'`). */
const EARLY_BLOCKS = 3;

/** Channels at a width multiplier, rounded down as Keras' MobileNet does (`int(filters * alpha)`). */
export function mobileNetChannels(channels: number, width: number): number {
  return Math.floor(channels * width);
}

/**
 * MobileNetV1 (Howard et al. 2017) as in Keras/TF.js: 3x3/2 conv stem with 32*width filters, then 13 depthwise-
 * separable blocks, ReLU6 everywhere, TF 'same' padding (what the Keras weights were trained with). Output
 * [B, S/32, S/32, 1024*width] before the grid policy.
 *
 * Child paths: `stem`, `block{1-13}` with `depthwise`/`pointwise`, each a ConvBn with `conv` and `bn`; `classifier`
 * when kept.
 */
export class MobileNetV1 extends BackboneEncoder {
  static readonly className = 'MobileNetV1';
  readonly width: 0.25 | 0.5 | 0.75 | 1.0;
  readonly batchNormEpsilon: number;
  readonly outputChannels: number;
  readonly stem: ConvBn;
  readonly blocks: readonly DepthwiseSeparable[];

  constructor(args: MobileNetV1Args) {
    super(args, 'symmetric');
    this.width = args.width;
    this.batchNormEpsilon = args.batchNormEpsilon ?? 1e-3;
    const eps = this.batchNormEpsilon;
    const stemChannels = mobileNetChannels(32, this.width);
    this.stem = this.child(
      'stem',
      new ConvBn({ inputChannels: 3, filters: stemChannels, kernelSize: 3, strides: 2, padding: 'same', activation: 'relu6', batchNormEpsilon: eps, seed: this.childSeed('stem') }),
    );
    let channels = stemChannels;
    this.blocks = MOBILENET_V1_BLOCKS.map(([baseChannels, strides], i) => {
      const out = mobileNetChannels(baseChannels, this.width);
      const name = `block${i + 1}`;
      const block = this.child(
        name,
        new DepthwiseSeparable({ inputChannels: channels, outputChannels: out, strides, batchNormEpsilon: eps, seed: this.childSeed(name) }),
      );
      channels = out;
      return block;
    });
    this.outputChannels = channels;
    this.addClassifier();
    this.finishConstruction();
  }

  protected override stemForward(images: tf.Tensor4D, options?: ForwardOptions): tf.Tensor4D {
    return this.stem.forward(images, options);
  }

  protected override earlyLayers(): tfl.layers.Layer[] {
    return [this.stem, ...this.blocks.slice(0, EARLY_BLOCKS)];
  }

  protected override stemLayers(): tfl.layers.Layer[] {
    return [this.stem];
  }

  override orderedBlocks(): BackboneBlock[] {
    return [...this.blocks];
  }

  override trunkMultiplyAdds(): number {
    let size = this.inputSize;
    let total = this.stem.multiplyAdds(size);
    size = this.stem.outputSize(size);
    for (const block of this.blocks) {
      total += block.multiplyAdds(size);
      size = block.outputSize(size);
    }
    return total;
  }

  override encoderConfig(): MobileNetV1Config & { normalization: PixelNormalization } {
    return {
      type: 'mobilenet-v1',
      width: this.width,
      inputSize: this.inputSize,
      grid: this.grid,
      freeze: this.freeze,
      ...(this.trainableFrom !== undefined ? { trainableFrom: this.trainableFrom } : {}),
      seed: this.seed,
      batchNormEpsilon: this.batchNormEpsilon,
      classifierClasses: this.classifierClasses,
      normalization: this.normalization,
    };
  }
}
