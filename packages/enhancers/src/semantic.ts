import * as tf from '@tensorflow/tfjs-core';
import type * as tfl from '@tensorflow/tfjs-layers';
import { Conv2D, S2Layer, ShapeError, assertRank, registerLayers, type Enhancer, type ForwardOptions, type S2LayerArgs } from '@s2cpnet/core';
import { ENHANCER_VARIANTS, requireInteger, requireOneOf, type EnhancerVariant } from './validate';

export type { EnhancerVariant } from './validate';

export interface SemanticEnhancerArgs extends S2LayerArgs {
  /** Channels C of the image-view feature map E5 (2048 for ResNet50). Output channels are the same. */
  channels: number;
  /** Channel reduction r of the gate's bottleneck (hidden width floor(C / r), at least 1). Default 16. */
  reduction?: number;
  /**
   * `'paper'` (default) follows Eq. 1-2. `'reference'` follows the authors' released code (spec section 9):
   * an extra 1x1 C -> C convolution after the gate. It only sets the default of `outputConv`.
   */
  variant?: EnhancerVariant;
  /** Apply a 1x1 C -> C convolution (with bias) to the gated map. Default: true for the reference variant, else false. */
  outputConv?: boolean;
}

/**
 * Semantic enhancer of the image view (paper Eq. 1-2), a squeeze-and-excitation channel gate:
 * `W = sigmoid(Conv(ReLU(Conv(AvgPool(E5)))))` and `F_sem = W * E5`, where AvgPool is the global average over the
 * grid and both convolutions are 1x1 with bias (C -> C/r -> C).
 *
 * Weights: `squeeze/{kernel,bias}`, `excite/{kernel,bias}` and, with `outputConv`, `output/{kernel,bias}`.
 *
 * @example
 * ```ts
 * import { SemanticEnhancer } from '@s2cpnet/enhancers/semantic';
 * const enhancer = new SemanticEnhancer({ channels: 2048, seed: 7 });
 * const enhanced = enhancer.enhance(features); // [B,14,14,2048] -> [B,14,14,2048]
 * ```
 */
export class SemanticEnhancer extends S2Layer implements Enhancer {
  static readonly className = 'SemanticEnhancer';
  readonly channels: number;
  readonly reduction: number;
  readonly hiddenChannels: number;
  readonly variant: EnhancerVariant;
  readonly useOutputConv: boolean;
  readonly squeeze: Conv2D;
  readonly excite: Conv2D;
  readonly outputConv: Conv2D | null;

  constructor(args: SemanticEnhancerArgs) {
    super(args);
    const component = 'SemanticEnhancer';
    this.channels = requireInteger(component, 'channels', args.channels);
    this.reduction = requireInteger(component, 'reduction', args.reduction ?? 16);
    this.variant = requireOneOf(component, 'variant', args.variant ?? 'paper', ENHANCER_VARIANTS);
    this.useOutputConv = args.outputConv ?? this.variant === 'reference';
    this.hiddenChannels = Math.max(1, Math.floor(this.channels / this.reduction));
    const conv = (name: string, inputChannels: number, filters: number) =>
      this.child(name, new Conv2D({ inputChannels, filters, kernelSize: 1, useBias: true, seed: this.childSeed(name) }));
    this.squeeze = conv('squeeze', this.channels, this.hiddenChannels);
    this.excite = conv('excite', this.hiddenChannels, this.channels);
    this.outputConv = this.useOutputConv ? conv('output', this.channels, this.channels) : null;
  }

  get inputChannels(): number {
    return this.channels;
  }

  get outputChannels(): number {
    return this.channels;
  }

  override build(): void {
    this.buildChild(this.squeeze, [null, 1, 1, this.channels]);
    this.buildChild(this.excite, [null, 1, 1, this.hiddenChannels]);
    if (this.outputConv) this.buildChild(this.outputConv, [null, null, null, this.channels]);
    this.built = true;
  }

  /** The channel gate W [B,1,1,C] of Eq. 1 for a feature map [B,H,W,C]. */
  channelGate(features: tf.Tensor4D): tf.Tensor4D {
    this.checkInput(features);
    return tf.tidy(() => {
      const pooled = tf.mean(features, [1, 2], true) as tf.Tensor4D;
      const hidden = tf.relu(this.squeeze.forward(pooled)) as tf.Tensor4D;
      return tf.sigmoid(this.excite.forward(hidden)) as tf.Tensor4D;
    });
  }

  /** `F_sem = W * E5` (Eq. 2), followed by the reference code's output conv when enabled. */
  enhance(features: tf.Tensor4D, _options?: ForwardOptions): tf.Tensor4D {
    return tf.tidy(() => {
      const gated = tf.mul(features, this.channelGate(features)) as tf.Tensor4D;
      return this.outputConv ? this.outputConv.forward(gated) : gated;
    });
  }

  private checkInput(features: tf.Tensor4D): void {
    this.ensureBuilt([null, null, null, this.channels]);
    assertRank(`SemanticEnhancer(${this.name})`, 'features', features, 4);
    if (features.shape[3] !== this.channels) {
      throw new ShapeError(`SemanticEnhancer(${this.name})`, 'features', `expected ${this.channels} channels, found ${features.shape[3]}`);
    }
  }

  override call(inputs: tf.Tensor | tf.Tensor[], kwargs: Record<string, unknown>): tf.Tensor {
    return this.enhance((Array.isArray(inputs) ? inputs[0]! : inputs) as tf.Tensor4D, kwargs as ForwardOptions);
  }

  override computeOutputShape(inputShape: tfl.Shape): tfl.Shape {
    return [...inputShape.slice(0, 3), this.channels];
  }

  /** Multiply-adds of one forward pass for one image on a height x width grid (convolutions only). */
  multiplyAdds(height: number, width: number): number {
    const gate = 2 * this.channels * this.hiddenChannels;
    const output = this.useOutputConv ? height * width * this.channels * this.channels : 0;
    return gate + output;
  }

  override getConfig(): tf.serialization.ConfigDict {
    return {
      ...super.getConfig(),
      channels: this.channels,
      reduction: this.reduction,
      variant: this.variant,
      outputConv: this.useOutputConv,
      seed: this.seed,
    };
  }
}

/** Registers SemanticEnhancer with tfjs serialization. Explicit; never done on import. */
export function registerSemanticEnhancerLayers(): void {
  registerLayers([SemanticEnhancer]);
}
