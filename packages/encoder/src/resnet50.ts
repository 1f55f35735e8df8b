import * as tf from '@tensorflow/tfjs-core';
import type * as tfl from '@tensorflow/tfjs-layers';
import type { ForwardOptions } from '@s2cpnet/core';
import { BackboneEncoder, type BackboneArgs, type BackboneBlock } from './backbone';
import type { PixelNormalization, ResNet50Config } from './config';
import { Bottleneck } from './layers/bottleneck';
import { ConvBn } from './layers/conv-bn';

export interface ResNet50Args extends BackboneArgs {
  strideOn?: '1x1' | '3x3';
  blocksPerStage?: readonly [number, number, number, number];
  baseWidth?: number;
  batchNormEpsilon?: number;
}

export const RESNET50_BLOCKS: readonly [number, number, number, number] = [3, 4, 6, 3];

/**
 * ResNet50 trunk (no classifier unless asked): 7x7/2 conv stem with 3-pixel zero padding, 3x3/2 max pool with 1-pixel
 * zero padding (after ReLU, so zero padding equals -inf padding), then four stages of bottlenecks at strides 4, 8,
 * 16, 32. The padding is explicit and symmetric as in both Keras' and torchvision's ResNet50, so either set of weights
 * reproduces its framework's outputs. Output [B, S/32, S/32, 32 * baseWidth] before the grid policy.
 *
 * Child paths: `stem`, `stage{1-4}/block{i}` with `conv1`/`conv2`/`conv3`/`shortcut`, each a ConvBn with `conv`
 * and `bn`; `classifier` when kept.
 */
export class ResNet50 extends BackboneEncoder {
  static readonly className = 'ResNet50';
  readonly strideOn: '1x1' | '3x3';
  readonly blocksPerStage: readonly [number, number, number, number];
  readonly baseWidth: number;
  readonly batchNormEpsilon: number;
  readonly outputChannels: number;
  readonly stem: ConvBn;
  readonly stages: readonly (readonly Bottleneck[])[];

  constructor(args: ResNet50Args = {}) {
    super(args, 'imagenet-mean-std');
    this.strideOn = args.strideOn ?? '3x3';
    this.blocksPerStage = [...(args.blocksPerStage ?? RESNET50_BLOCKS)] as unknown as [number, number, number, number];
    this.baseWidth = args.baseWidth ?? 64;
    this.batchNormEpsilon = args.batchNormEpsilon ?? (this.strideOn === '1x1' ? 1.001e-5 : 1e-5);
    const eps = this.batchNormEpsilon;
    this.stem = this.child(
      'stem',
      new ConvBn({ inputChannels: 3, filters: this.baseWidth, kernelSize: 7, strides: 2, padding: 3, batchNormEpsilon: eps, seed: this.childSeed('stem') }),
    );
    const stages: Bottleneck[][] = [];
    let channels = this.baseWidth;
    this.blocksPerStage.forEach((count, stageIndex) => {
      const mid = this.baseWidth * 2 ** stageIndex;
      const out = mid * 4;
      const blocks: Bottleneck[] = [];
      for (let b = 0; b < count; b++) {
        const name = `stage${stageIndex + 1}/block${b}`;
        blocks.push(
          this.child(
            name,
            new Bottleneck({
              inputChannels: b === 0 ? channels : out,
              midChannels: mid,
              outputChannels: out,
              strides: b === 0 && stageIndex > 0 ? 2 : 1,
              strideOn: this.strideOn,
              projection: b === 0,
              batchNormEpsilon: eps,
              seed: this.childSeed(name),
            }),
          ),
        );
      }
      channels = out;
      stages.push(blocks);
    });
    this.stages = stages;
    this.outputChannels = channels;
    this.addClassifier();
    this.finishConstruction();
  }

  protected override stemForward(images: tf.Tensor4D, options?: ForwardOptions): tf.Tensor4D {
    return tf.tidy(() => tf.maxPool(tf.pad(this.stem.forward(images, options), [[0, 0], [1, 1], [1, 1], [0, 0]]), 3, 2, 'valid'));
  }

  protected override earlyLayers(): tfl.layers.Layer[] {
    return [this.stem, ...this.stages[0]!];
  }

  protected override stemLayers(): tfl.layers.Layer[] {
    return [this.stem];
  }

  override orderedBlocks(): BackboneBlock[] {
    return this.stages.flat();
  }

  override trunkMultiplyAdds(): number {
    let size = this.inputSize;
    let total = this.stem.multiplyAdds(size);
    size = this.stem.outputSize(size);
    size = Math.floor((size + 2 - 3) / 2) + 1; // max pool 3x3/2, padding 1
    for (const stage of this.stages) {
      for (const block of stage) {
        total += block.multiplyAdds(size);
        size = block.outputSize(size);
      }
    }
    return total;
  }

  override encoderConfig(): ResNet50Config & { normalization: PixelNormalization } {
    return {
      type: 'resnet50',
      strideOn: this.strideOn,
      inputSize: this.inputSize,
      grid: this.grid,
      freeze: this.freeze,
      ...(this.trainableFrom !== undefined ? { trainableFrom: this.trainableFrom } : {}),
      seed: this.seed,
      blocksPerStage: [...this.blocksPerStage] as unknown as [number, number, number, number],
      baseWidth: this.baseWidth,
      batchNormEpsilon: this.batchNormEpsilon,
      classifierClasses: this.classifierClasses,
      normalization: this.normalization,
    };
  }
}
