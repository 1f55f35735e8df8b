import * as tf from '@tensorflow/tfjs-core';
import type * as tfl from '@tensorflow/tfjs-layers';
import {
  ConfigError,
  Conv2D,
  S2Layer,
  ShapeError,
  assertRank,
  registerLayers,
  type Enhancer,
  type ForwardOptions,
  type LayerVariable,
  type S2LayerArgs,
} from '@s2cpnet/core';
import { ENHANCER_VARIANTS, requireInteger, requireOneOf, type EnhancerVariant } from './validate';

export type { EnhancerVariant } from './validate';

/** Which saliency gate the learnable scalar `a` multiplies (the other gets `1 - a`). */
export type AlphaBranch = 'background' | 'foreground';

export interface SpatialEnhancerArgs extends S2LayerArgs {
  /** Channels C of the mask-view feature map M5 (2048 for ResNet50). */
  inputChannels: number;
  /** Output channels of the final 1x1 convolution. Default 512 (paper); the reference variant keeps `inputChannels`. */
  outputChannels?: number;
  /**
   * `'paper'` (default) follows Eq. 3-5. `'reference'` follows the authors' released code (spec section 9): the
   * low-pass map pools to a 7x7 grid instead of globally, the output keeps C channels and `a` weights the
   * foreground (max) branch. It only sets the defaults of `lowPassGrid`, `outputChannels` and `alphaBranch`.
   */
  variant?: EnhancerVariant;
  /**
   * Side P of the grid the low-pass map L is pooled to before being upsampled back (non-overlapping average
   * pooling with kernel = stride = G / P, then nearest upsampling). `null` (paper default) pools globally.
   * The reference variant uses 7.
   */
  lowPassGrid?: number | null;
  /** Gate that `a` multiplies: `'background'` (paper, Eq. 5: a * W_back) or `'foreground'` (reference code). */
  alphaBranch?: AlphaBranch;
  /** Initial value of the learnable scalar `a`. Default 0.5. */
  initialAlpha?: number;
}

/**
 * Spatial enhancer of the mask view (paper Eq. 3-5):
 * `L = Up(GlobalAvgPool(M5))`, `H = M5 - L`, `W_back = sigmoid(min_c H)`, `W_fore = sigmoid(max_c H)` (each
 * [B,G,G,1]), `F_spatial = Conv1x1(a * W_back * M5 + (1 - a) * W_fore * M5)` with a learnable scalar `a`.
 *
 * "Up" of a global pool is a broadcast (no resize op, whose gradients are wrong on some backends); the 7x7
 * reference pooling uses 'valid' average pooling with stride = kernel and a reshape-and-broadcast upsampling.
 *
 * Weights: `alpha` (shape [1]), `output/{kernel,bias}`.
 *
 * @example
 * ```ts
 * import { SpatialEnhancer } from '@s2cpnet/enhancers/spatial';
 * const enhancer = new SpatialEnhancer({ inputChannels: 2048, outputChannels: 512, seed: 7 });
 * const enhanced = enhancer.enhance(maskFeatures); // [B,14,14,2048] -> [B,14,14,512]
 * ```
 */
export class SpatialEnhancer extends S2Layer implements Enhancer {
  static readonly className = 'SpatialEnhancer';
  readonly inputChannels: number;
  readonly outputChannels: number;
  readonly variant: EnhancerVariant;
  readonly lowPassGrid: number | null;
  readonly alphaBranch: AlphaBranch;
  readonly initialAlpha: number;
  readonly outputConv: Conv2D;
  alpha!: LayerVariable;

  constructor(args: SpatialEnhancerArgs) {
    super(args);
    const component = 'SpatialEnhancer';
    this.inputChannels = requireInteger(component, 'inputChannels', args.inputChannels);
    this.variant = requireOneOf(component, 'variant', args.variant ?? 'paper', ENHANCER_VARIANTS);
    const reference = this.variant === 'reference';
    this.outputChannels = requireInteger(component, 'outputChannels', args.outputChannels ?? (reference ? this.inputChannels : 512));
    const lowPassGrid = args.lowPassGrid === undefined ? (reference ? 7 : null) : args.lowPassGrid;
    this.lowPassGrid = lowPassGrid === null ? null : requireInteger(component, 'lowPassGrid', lowPassGrid);
    this.alphaBranch = requireOneOf(component, 'alphaBranch', args.alphaBranch ?? (reference ? 'foreground' : 'background'), [
      'background',
      'foreground',
    ]);
    this.initialAlpha = args.initialAlpha ?? 0.5;
    if (!Number.isFinite(this.initialAlpha)) {
      throw new ConfigError(`${component}.initialAlpha`, `expected a finite number, found ${JSON.stringify(args.initialAlpha)}`);
    }
    this.outputConv = this.child(
      'output',
      new Conv2D({ inputChannels: this.inputChannels, filters: this.outputChannels, kernelSize: 1, useBias: true, seed: this.childSeed('output') }),
    );
  }

  override build(): void {
    this.alpha = this.addSeededWeight('alpha', [1], { kind: 'constant', value: this.initialAlpha });
    this.buildChild(this.outputConv, [null, null, null, this.inputChannels]);
    this.built = true;
  }

  /** The low-pass map L: the global mean [B,1,1,C] (its "Up" is a broadcast), or the P x P block means upsampled to [B,H,W,C]. */
  lowPass(features: tf.Tensor4D): tf.Tensor4D {
    this.checkInput(features);
    const [batch, height, width, channels] = features.shape;
    const grid = this.lowPassGrid;
    if (grid === null) return tf.tidy(() => tf.mean(features, [1, 2], true) as tf.Tensor4D);
    if (height % grid !== 0 || width % grid !== 0) {
      throw new ShapeError(
        `SpatialEnhancer(${this.name})`,
        'features',
        `grid ${height}x${width} is not a multiple of lowPassGrid ${grid} (pooling needs kernel = stride = G / P)`,
      );
    }
    const kh = height / grid;
    const kw = width / grid;
    return tf.tidy(() => {
      const pooled = kh === 1 && kw === 1 ? features : tf.avgPool(features, [kh, kw], [kh, kw], 'valid');
      // Nearest upsampling by reshape + broadcast: correct gradients on every backend (unlike resizeNearestNeighbor on cpu).
      const blocks = tf.reshape(pooled, [batch, grid, 1, grid, 1, channels]);
      const upsampled = tf.mul(blocks, tf.ones([1, 1, kh, 1, kw, 1]));
      return tf.reshape(upsampled, [batch, height, width, channels]) as tf.Tensor4D;
    });
  }

  /** The background and foreground gates W_back, W_fore [B,H,W,1] of Eq. 4. */
  saliencyGates(features: tf.Tensor4D): { background: tf.Tensor4D; foreground: tf.Tensor4D } {
    return tf.tidy(() => {
      const high = tf.sub(features, this.lowPass(features));
      return {
        background: tf.sigmoid(tf.min(high, -1, true)) as tf.Tensor4D,
        foreground: tf.sigmoid(tf.max(high, -1, true)) as tf.Tensor4D,
      };
    });
  }

  /** `F_spatial` of Eq. 5. */
  enhance(features: tf.Tensor4D, _options?: ForwardOptions): tf.Tensor4D {
    return tf.tidy(() => {
      const { background, foreground } = this.saliencyGates(features);
      const a = this.alpha.read();
      const [weighted, complement] = this.alphaBranch === 'background' ? [background, foreground] : [foreground, background];
      // a*W1*M + (1-a)*W2*M = (a*W1 + (1-a)*W2) * M: one full-size multiply instead of two.
      const gate = tf.add(tf.mul(a, weighted), tf.mul(tf.sub(1, a), complement));
      return this.outputConv.forward(tf.mul(features, gate) as tf.Tensor4D);
    });
  }

  private checkInput(features: tf.Tensor4D): void {
    this.ensureBuilt([null, null, null, this.inputChannels]);
    assertRank(`SpatialEnhancer(${this.name})`, 'features', features, 4);
    if (features.shape[3] !== this.inputChannels) {
      throw new ShapeError(`SpatialEnhancer(${this.name})`, 'features', `expected ${this.inputChannels} channels, found ${features.shape[3]}`);
    }
  }

  override call(inputs: tf.Tensor | tf.Tensor[], kwargs: Record<string, unknown>): tf.Tensor {
    return this.enhance((Array.isArray(inputs) ? inputs[0]! : inputs) as tf.Tensor4D, kwargs as ForwardOptions);
  }

  override computeOutputShape(inputShape: tfl.Shape): tfl.Shape {
    return [...inputShape.slice(0, 3), this.outputChannels];
  }

  /** Multiply-adds of one forward pass for one image on a height x width grid (the 1x1 convolution). */
  multiplyAdds(height: number, width: number): number {
    return height * width * this.inputChannels * this.outputChannels;
  }

  override getConfig(): tf.serialization.ConfigDict {
    return {
      ...super.getConfig(),
      inputChannels: this.inputChannels,
      outputChannels: this.outputChannels,
      variant: this.variant,
      lowPassGrid: this.lowPassGrid,
      alphaBranch: this.alphaBranch,
      initialAlpha: this.initialAlpha,
      seed: this.seed,
    };
  }
}

/** Registers SpatialEnhancer with tfjs serialization. Explicit; never done on import. */
export function registerSpatialEnhancerLayers(): void {
  registerLayers([SpatialEnhancer]);
}
