import * as tf from '@tensorflow/tfjs-core';
import type * as tfl from '@tensorflow/tfjs-layers';
import {
  ConfigError,
  S2Layer,
  ShapeError,
  deriveSeed,
  type CategoryHead,
  type ForwardOptions,
} from '@s2cpnet/core';
import { createEncoder, defaultEncoders, type BackboneEncoder, type EncoderFactories } from '@s2cpnet/encoder';
import { SemanticEnhancer, SpatialEnhancer } from '@s2cpnet/enhancers';
import { createFusion, defaultFusions, type FusionLayer } from '@s2cpnet/fusion';
import { createCategoryHead, defaultCategoryHeads } from '@s2cpnet/category-decoder';
import {
  captionCrossEntropy,
  createCaptionDecoder,
  defaultCaptionDecoders,
  type CaptionDecoderComponent,
} from '@s2cpnet/caption-decoder';
import { validateConfig, type S2CPNetConfig } from './config';

export type AnyFactoryMap = Record<string, (config: never, context: never) => unknown>;

/** Component factory maps; pass extended maps to plug in your own components (e.g. a fusion strategy). */
export interface ComponentFactories {
  encoder?: EncoderFactories;
  fusion?: AnyFactoryMap;
  categoryHead?: AnyFactoryMap;
  captionDecoder?: AnyFactoryMap;
}

export interface BuildOptions {
  /** Caption vocabulary size V. */
  vocabSize: number;
  /** Number of noun classes K (ignored when the config has no category head). */
  numClasses: number;
  factories?: ComponentFactories;
}

/** Inputs of one training or scoring step. Either pixels or (cached) backbone features. */
export interface StepInputs {
  /** [B,S,S,3] normalised images. */
  images?: tf.Tensor4D;
  /** [B,S,S,3] normalised mask views. */
  masks?: tf.Tensor4D;
  /**
   * Cached backbone features of the images: the output of the backbone's frozen part, `encoder.frozenFeatures` (the
   * whole backbone's [B,G0,G0,C] when it is frozen; the last frozen block's output with `encoder.trainableFrom`).
   */
  imageFeatures?: tf.Tensor4D;
  maskFeatures?: tf.Tensor4D;
  /** [B,C,T] caption ids: `<start>` words `<end>` `<pad>`... */
  captions: tf.Tensor3D;
  /** [B,K] multi-hot noun targets. */
  categories?: tf.Tensor2D;
}

export interface LossParts {
  total: tf.Scalar;
  caption: tf.Scalar;
  category: tf.Scalar | null;
}

/**
 * S²CPNet and its ablation variants, assembled from the component packages by config: a shared encoder for the
 * image and mask views, optional semantic/spatial enhancers, a fusion strategy, an optional category head and a
 * caption decoder. Every image is encoded once per step and its captions are decoded against the same memory.
 */
export class S2CPNet extends S2Layer {
  static readonly className = 'S2CPNet';
  readonly config: S2CPNetConfig;
  readonly vocabSize: number;
  readonly numClasses: number;
  readonly encoder: BackboneEncoder;
  readonly semanticEnhancer: SemanticEnhancer | null;
  readonly spatialEnhancer: SpatialEnhancer | null;
  readonly fusion: FusionLayer;
  readonly categoryHead: (CategoryHead & tfl.layers.Layer) | null;
  readonly captionDecoder: CaptionDecoderComponent;

  constructor(config: S2CPNetConfig, options: BuildOptions) {
    super({ name: 's2cpnet', seed: config.seed });
    this.config = validateConfig(config);
    this.vocabSize = options.vocabSize;
    this.numClasses = config.categoryHead ? options.numClasses : 0;
    if (config.categoryHead && !(options.numClasses > 0)) {
      throw new ConfigError('$.categoryHead', `the category head needs at least one noun class, found ${options.numClasses}`);
    }
    const f = options.factories ?? {};
    const seed = (name: string) => deriveSeed(config.seed, name);

    this.encoder = this.child(
      'encoder',
      createEncoder({ seed: seed('encoder'), ...config.encoder }, { jsonPath: '$.encoder', factories: f.encoder ?? (defaultEncoders as unknown as EncoderFactories) }),
    );
    const channels = this.encoder.outputChannels;
    const grid = this.encoder.gridSize;
    this.semanticEnhancer = config.semanticEnhancer
      ? this.child('semanticEnhancer', new SemanticEnhancer({ channels, ...config.semanticEnhancer, seed: seed('semanticEnhancer') }))
      : null;
    this.spatialEnhancer = config.spatialEnhancer
      ? this.child('spatialEnhancer', new SpatialEnhancer({ inputChannels: channels, ...config.spatialEnhancer, seed: seed('spatialEnhancer') }))
      : null;
    const imageChannels = this.semanticEnhancer ? this.semanticEnhancer.outputChannels : channels;
    const maskChannels = this.spatialEnhancer ? this.spatialEnhancer.outputChannels : channels;
    this.fusion = this.child(
      'fusion',
      createFusion(
        { imageChannels, maskChannels, grid, seed: seed('fusion'), ...config.fusion } as never,
        (f.fusion ?? defaultFusions) as never,
        { jsonPath: '$.fusion' },
      ),
    );
    if (this.fusion.usesMaskView !== config.useMaskView) {
      throw new ConfigError('$.fusion.type', `fusion "${config.fusion.type}" ${this.fusion.usesMaskView ? 'reads' : 'ignores'} the mask view but useMaskView is ${config.useMaskView}`);
    }
    const memoryWidth = this.fusion.memoryWidth;
    this.categoryHead = config.categoryHead
      ? (this.child(
          'categoryHead',
          createCategoryHead(
            { numClasses: this.numClasses, memoryWidth, seed: seed('categoryHead'), ...config.categoryHead } as never,
            (f.categoryHead ?? defaultCategoryHeads) as never,
            { jsonPath: '$.categoryHead' },
          ) as unknown as tfl.layers.Layer,
        ) as unknown as CategoryHead & tfl.layers.Layer)
      : null;
    this.captionDecoder = this.child(
      'captionDecoder',
      createCaptionDecoder(
        { vocabSize: this.vocabSize, memoryWidth, seed: seed('captionDecoder'), ...config.captionDecoder } as never,
        (f.captionDecoder ?? defaultCaptionDecoders) as never,
        { jsonPath: '$.captionDecoder' },
      ) as CaptionDecoderComponent,
    );
    this.createAllWeights();
    this.built = true;
  }

  /**
   * Components create their weights lazily on first use; a model must own all of them from the start (so the
   * optimiser sees every trainable weight and a checkpoint can be loaded before any forward pass). One dummy pass
   * over zero features of batch 1 builds everything.
   */
  private createAllWeights(): void {
    tf.tidy(() => {
      const g = this.gridSize;
      const c = this.encoder.outputChannels;
      const features = tf.zeros([1, g, g, c]) as tf.Tensor4D;
      const memory = this.memoryFromFeatures(features, this.config.useMaskView ? features : null, { training: false });
      this.categoryHead?.logits(memory, { training: false });
      this.captionDecoder.forward(memory, tf.zeros([1, 2], 'int32') as tf.Tensor2D, { training: false });
    });
  }

  override build(): void {
    this.built = true;
  }

  get gridSize(): number {
    return this.encoder.gridSize;
  }

  get inputSize(): number {
    return this.encoder.inputSize;
  }

  /** Backbone features of images (or mask views) [B,S,S,3] -> [B,G,G,C], the same weights for both views. */
  backboneFeatures(pixels: tf.Tensor4D, options?: ForwardOptions): tf.Tensor4D {
    return this.encoder.encode(pixels, options);
  }

  /** Memory [B,N,D] from backbone features of both views (mask features null for single-view presets). */
  memoryFromFeatures(imageFeatures: tf.Tensor4D, maskFeatures: tf.Tensor4D | null, options?: ForwardOptions): tf.Tensor3D {
    if (this.config.useMaskView && !maskFeatures) throw new ShapeError('S2CPNet', 'masks', `preset ${this.config.name} reads the mask view, but none was given`);
    return tf.tidy(() => {
      const e = this.semanticEnhancer ? this.semanticEnhancer.enhance(imageFeatures, options) : imageFeatures;
      const [b, g, , c1] = e.shape;
      const imageTokens = tf.reshape(e, [b, g * g, c1]) as tf.Tensor3D;
      let maskTokens: tf.Tensor3D | null = null;
      if (this.config.useMaskView && maskFeatures) {
        const m = this.spatialEnhancer ? this.spatialEnhancer.enhance(maskFeatures, options) : maskFeatures;
        maskTokens = tf.reshape(m, [m.shape[0], m.shape[1] * m.shape[2], m.shape[3]]) as tf.Tensor3D;
      }
      return this.fusion.fuse(imageTokens, maskTokens, options);
    });
  }

  /** Memory [B,N,D] from pixels (or cached features) of both views. */
  memory(inputs: Pick<StepInputs, 'images' | 'masks' | 'imageFeatures' | 'maskFeatures'>, options?: ForwardOptions): tf.Tensor3D {
    return tf.tidy(() => {
      if (this.config.useMaskView && inputs.images && inputs.masks && !inputs.imageFeatures && !inputs.maskFeatures) {
        // Both views in one call: batch norm then sees the same statistics in training (one batch of both views)
        // as its moving averages hold for inference. Two separate calls would normalise each view by its own batch
        // statistics in training but by a blend of both at inference.
        const views = this.encoder.encodeViews(inputs.images, inputs.masks, options);
        return this.memoryFromFeatures(views.images, views.masks, options);
      }
      if (this.encoder.partlyTrainable && inputs.imageFeatures) {
        // Cached features of the backbone's frozen part (partial fine-tuning): the trainable blocks run here, both
        // views in one call for the batch-norm reason above.
        const both = this.config.useMaskView && inputs.maskFeatures;
        if (this.config.useMaskView && !both) throw new ShapeError('S2CPNet', 'maskFeatures', `preset ${this.config.name} reads the mask view: expected maskFeatures with imageFeatures`);
        const finished = this.encoder.encodeFromFrozen(both ? (tf.concat([inputs.imageFeatures, inputs.maskFeatures!], 0) as tf.Tensor4D) : inputs.imageFeatures, options);
        if (!both) return this.memoryFromFeatures(finished, null, options);
        const [imageFeatures, maskFeatures] = tf.split(finished, 2, 0) as [tf.Tensor4D, tf.Tensor4D];
        return this.memoryFromFeatures(imageFeatures, maskFeatures, options);
      }
      const imageFeatures = inputs.imageFeatures ?? (inputs.images ? this.backboneFeatures(inputs.images, options) : null);
      if (!imageFeatures) throw new ShapeError('S2CPNet', 'images', 'expected images or imageFeatures');
      let maskFeatures: tf.Tensor4D | null = null;
      if (this.config.useMaskView) {
        maskFeatures = inputs.maskFeatures ?? (inputs.masks ? this.backboneFeatures(inputs.masks, options) : null);
        if (!maskFeatures) throw new ShapeError('S2CPNet', 'masks', `preset ${this.config.name} reads the mask view: expected masks or maskFeatures`);
      }
      return this.memoryFromFeatures(imageFeatures, maskFeatures, options);
    });
  }

  /**
   * Training loss (spec section 6): caption cross-entropy over all captions of each image, ignoring `<pad>`, plus
   * lambda x the category BCE. Each image is encoded once; its C captions are decoded against the same memory.
   */
  loss(inputs: StepInputs, options: ForwardOptions = {}): LossParts {
    const [b, c, t] = inputs.captions.shape;
    let category: tf.Scalar | null = null;
    let caption!: tf.Scalar;
    const total = tf.tidy(() => {
      const memory = this.memory(inputs, options);
      const rows = tf.reshape(inputs.captions, [b * c, t]) as tf.Tensor2D;
      const input = tf.slice(rows, [0, 0], [b * c, t - 1]) as tf.Tensor2D;
      const target = tf.slice(rows, [0, 1], [b * c, t - 1]) as tf.Tensor2D;
      const { logits } = this.captionDecoder.forward(memory, input, { ...options, captionsPerImage: c } as never);
      caption = tf.keep(captionCrossEntropy(logits, target, 0));
      let sum: tf.Scalar = tf.clone(caption); // distinct from `caption`, so callers can dispose each part
      if (this.categoryHead && inputs.categories && this.config.categoryLossWeight > 0) {
        const categoryLogits = this.categoryHead.logits(memory, options);
        category = tf.keep(this.categoryHead.loss(categoryLogits, inputs.categories));
        sum = tf.add(sum, tf.mul(category, this.config.categoryLossWeight)) as tf.Scalar;
      }
      return sum;
    });
    return { total, caption, category };
  }

  override call(): tf.Tensor {
    throw new Error('S2CPNet: use memory(), loss() or the inference functions; the model has several inputs and outputs');
  }

  override computeOutputShape(): tfl.Shape {
    return [null, this.gridSize * this.gridSize, this.fusion.memoryWidth];
  }

  override getConfig(): tf.serialization.ConfigDict {
    return { config: this.config as unknown as tf.serialization.ConfigDict, vocabSize: this.vocabSize, numClasses: this.numClasses };
  }
}

/**
 * Builds S²CPNet (or any ablation variant) from a config.
 *
 * @example
 * ```ts
 * import { buildS2CPNet, presetConfig } from '@s2cpnet/model';
 * const model = buildS2CPNet(presetConfig('s2cpnet'), { vocabSize: 300, numClasses: 90 });
 * console.log(model.countParams());
 * ```
 */
export function buildS2CPNet(config: S2CPNetConfig, options: BuildOptions): S2CPNet {
  return new S2CPNet(config, options);
}
