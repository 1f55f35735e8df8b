import * as tf from '@tensorflow/tfjs-core';
import type * as tfl from '@tensorflow/tfjs-layers';
import { ConfigError, Linear, S2Layer, ShapeError, type Encoder, type ForwardOptions, type S2LayerArgs } from '@s2cpnet/core';
import { PAPER_GRID_SIZE, planGrid, type EncoderConfig, type FreezePolicy, type GridPlan, type GridPolicy, type PixelNormalization } from './config';
import { resampleGrid } from './grid';
import { ConvBn, disposeLayerTree, setTrainableDeep } from './layers/conv-bn';

/** Constructor arguments shared by both backbones (the config fields without `type`, plus tfjs' layer args). */
export interface BackboneArgs extends S2LayerArgs {
  inputSize?: number;
  grid?: GridPolicy;
  freeze?: FreezePolicy;
  trainableFrom?: number;
  classifierClasses?: number;
  normalization?: PixelNormalization;
}

const IMAGENET_MEAN_RGB = [0.485, 0.456, 0.406];
const IMAGENET_STD_RGB = [0.229, 0.224, 0.225];
const CAFFE_MEAN_BGR = [103.939, 116.779, 123.68];

/** One block of a backbone (a MobileNet depthwise-separable block, a ResNet bottleneck). */
export type BackboneBlock = tfl.layers.Layer & { forward(x: tf.Tensor4D, options?: ForwardOptions): tf.Tensor4D };

/** Image features and mask features from one shared-weight pass. */
export interface EncodedViews {
  images: tf.Tensor4D;
  masks: tf.Tensor4D;
}

/**
 * What ResNet50 and MobileNetV1 share: the `Encoder` contract (images [B,S,S,3] -> grid [B,G,G,C]), the grid policy,
 * freezing, the optional classifier head, pixel normalisation and cost accounting.
 */
export abstract class BackboneEncoder extends S2Layer implements Encoder {
  readonly inputSize: number;
  readonly gridSize: number;
  readonly grid: GridPolicy;
  readonly gridPlan: GridPlan;
  readonly classifierClasses: number;
  readonly normalization: PixelNormalization;
  abstract readonly outputChannels: number;
  private freezePolicy: FreezePolicy;
  /** Partial fine-tuning: the first trainable block (1-based), or undefined. */
  readonly trainableFrom: number | undefined;
  protected classifier: Linear | null = null;

  constructor(args: BackboneArgs, defaultNormalization: PixelNormalization) {
    super(args);
    this.inputSize = args.inputSize ?? 224;
    this.grid = args.grid ?? PAPER_GRID_SIZE;
    this.gridPlan = planGrid(this.inputSize, this.grid, 'grid');
    this.gridSize = this.gridPlan.gridSize;
    this.classifierClasses = args.classifierClasses ?? 0;
    this.normalization = args.normalization ?? defaultNormalization;
    this.freezePolicy = args.freeze ?? 'none';
    this.trainableFrom = args.trainableFrom;
  }

  /** The config this encoder was made from (JSON-safe; `createEncoder(encoder.encoderConfig())` makes a twin). */
  abstract encoderConfig(): EncoderConfig;

  /** The stem: normalised images -> the first block's input (MobileNetV1: one conv; ResNet50: conv and max pool). */
  protected abstract stemForward(images: tf.Tensor4D, options?: ForwardOptions): tf.Tensor4D;

  /** Native-grid features [B, S/32, S/32, C] of normalised images: the stem, then every block in order. */
  protected trunk(images: tf.Tensor4D, options?: ForwardOptions): tf.Tensor4D {
    return tf.tidy(() => {
      let x = this.stemForward(images, options);
      for (const block of this.orderedBlocks()) x = block.forward(x, options);
      return x;
    });
  }

  /** Layers frozen by the `stem-stage1` policy (everything at output stride <= 4). */
  protected abstract earlyLayers(): tfl.layers.Layer[];

  /** The stem (and anything else before the first block), frozen whenever `trainableFrom` is set. */
  protected abstract stemLayers(): tfl.layers.Layer[];

  /** The backbone's blocks in order (what `trainableFrom` counts). */
  abstract orderedBlocks(): BackboneBlock[];

  /** Whether only part of the backbone trains (`freeze` `none` with `trainableFrom`): the rest can be cached. */
  get partlyTrainable(): boolean {
    return this.freezePolicy === 'none' && this.trainableFrom !== undefined;
  }

  /**
   * What a feature cache stores for these images: the output of the backbone's frozen part. For a fully frozen or
   * fully trainable backbone that is `encode(images)`; with `trainableFrom` N (partial fine-tuning) it is the output
   * of block N-1 (the stem's output for N = 1), always computed in inference mode. `encodeFromFrozen` finishes it.
   */
  frozenFeatures(images: tf.Tensor4D): tf.Tensor4D {
    if (!this.partlyTrainable) return this.encode(images);
    this.assertImages(images, 'images');
    return tf.tidy(() => {
      let x = this.stemForward(images, { training: false });
      for (const block of this.orderedBlocks().slice(0, this.trainableFrom! - 1)) x = block.forward(x, { training: false });
      return x;
    });
  }

  /**
   * Finishes `frozenFeatures`: the trainable blocks and the grid resampling (the identity unless `trainableFrom` is
   * set). `encodeFromFrozen(frozenFeatures(x))` equals `encode(x)`.
   */
  encodeFromFrozen(features: tf.Tensor4D, options?: ForwardOptions): tf.Tensor4D {
    if (!this.partlyTrainable) return features;
    return tf.tidy(() => {
      let x = features;
      for (const block of this.orderedBlocks().slice(this.trainableFrom! - 1)) x = block.forward(x, options);
      return resampleGrid(x, this.gridPlan);
    });
  }

  /** The weights of the frozen part that `frozenFeatures` computes (every weight unless `trainableFrom` is set). */
  frozenPartWeights(): tfl.LayerVariable[] {
    if (!this.partlyTrainable) return this.weights;
    return [...this.stemLayers(), ...this.orderedBlocks().slice(0, this.trainableFrom! - 1)].flatMap((layer) => layer.weights);
  }

  /** Multiply-adds of the trunk per image at the configured input size. */
  abstract trunkMultiplyAdds(): number;

  /** Adds the classifier head (called by subclasses after their trunk children, so weight order stays stable). */
  protected addClassifier(): void {
    if (this.classifierClasses > 0) {
      this.classifier = this.child(
        'classifier',
        new Linear({ inputDim: this.outputChannels, units: this.classifierClasses, seed: this.childSeed('classifier') }),
      );
    }
  }

  /** Builds every weight now (deterministic from the seed) and applies the freeze policy. */
  protected finishConstruction(): void {
    // The block count is known only now (the config check cannot see it); checked before any weight exists.
    const blocks = this.orderedBlocks().length;
    if (this.trainableFrom !== undefined && this.trainableFrom > blocks) {
      throw new ConfigError('$.encoder.trainableFrom', `this backbone has ${blocks} blocks (1..${blocks}), found ${this.trainableFrom}`);
    }
    this.ensureBuilt([null, this.inputSize, this.inputSize, 3]);
    this.setFreeze(this.freezePolicy);
  }

  override build(): void {
    for (const layer of this.children().values()) {
      if (layer instanceof S2Layer) layer.ensureBuilt([null, null, null, null]);
    }
    this.built = true;
  }

  get freeze(): FreezePolicy {
    return this.freezePolicy;
  }

  /**
   * Changes which layers are frozen (frozen layers: not trainable, batch norm in inference mode). With policy `none`
   * and `trainableFrom` set, the stem and the blocks before `trainableFrom` stay frozen.
   */
  setFreeze(policy: FreezePolicy): void {
    this.freezePolicy = policy;
    setTrainableDeep(this, policy !== 'all');
    if (policy === 'stem-stage1') for (const layer of this.earlyLayers()) setTrainableDeep(layer, false);
    if (policy === 'none' && this.trainableFrom !== undefined) {
      for (const layer of [...this.stemLayers(), ...this.orderedBlocks().slice(0, this.trainableFrom - 1)]) setTrainableDeep(layer, false);
    }
  }

  /**
   * Frees the folded kernels and biases that frozen units cache (as much memory again as the frozen weights); they
   * are rebuilt on the next call.
   */
  releaseCachedWeights(): void {
    const visit = (layer: tfl.layers.Layer): void => {
      if (layer instanceof ConvBn) layer.releaseCachedWeights();
      else if (layer instanceof S2Layer) for (const child of layer.children().values()) visit(child);
    };
    visit(this);
  }

  /** The classifier head, when the config keeps one. */
  get classifierHead(): Linear | null {
    return this.classifier;
  }

  /** Images [B,S,S,3] (already normalised, see `normalizePixels`) -> features [B,G,G,C]. */
  encode(images: tf.Tensor4D, options?: ForwardOptions): tf.Tensor4D {
    this.assertImages(images, 'images');
    return tf.tidy(() => resampleGrid(this.trunk(images, options), this.gridPlan));
  }

  /**
   * Both views through the same weights in one call (one batch of 2B), then split. In a training call of a
   * trainable backbone the batch-norm statistics are therefore shared by the two views.
   */
  encodeViews(images: tf.Tensor4D, masks: tf.Tensor4D, options?: ForwardOptions): EncodedViews {
    this.assertImages(images, 'images');
    this.assertImages(masks, 'masks');
    if (images.shape[0] !== masks.shape[0]) {
      throw new ShapeError(this.getClassName(), 'masks', `must have the batch size of 'images' (${images.shape[0]}), found ${masks.shape[0]}`);
    }
    const [imageFeatures, maskFeatures] = tf.tidy(() => {
      const features = this.encode(tf.concat([images, masks], 0) as tf.Tensor4D, options);
      return tf.split(features, 2, 0) as [tf.Tensor4D, tf.Tensor4D];
    });
    return { images: imageFeatures!, masks: maskFeatures! };
  }

  /** Class logits [B, classifierClasses] from globally pooled native features (needs `classifierClasses` > 0). */
  classify(images: tf.Tensor4D, options?: ForwardOptions): tf.Tensor2D {
    const head = this.classifier;
    if (!head) {
      throw new ShapeError(this.getClassName(), 'classifierClasses', 'classify() needs a classifier head: set classifierClasses > 0');
    }
    this.assertImages(images, 'images');
    return tf.tidy(() => head.forward(tf.mean(this.trunk(images, options), [1, 2])) as tf.Tensor2D);
  }

  /** Raw RGB pixels in 0..255 [B,H,W,3] -> the normalisation this backbone's weights expect. */
  normalizePixels(pixels: tf.Tensor4D): tf.Tensor4D {
    if (pixels.rank !== 4 || pixels.shape[3] !== 3) {
      throw new ShapeError(this.getClassName(), 'pixels', `expected shape [?, ?, ?, 3], found [${pixels.shape.join(', ')}]`);
    }
    return tf.tidy(() => {
      const x = tf.cast(pixels, 'float32');
      switch (this.normalization) {
        case 'symmetric':
          return tf.sub(tf.div(x, 127.5), 1) as tf.Tensor4D;
        case 'imagenet-mean-std': {
          const mean = tf.tensor1d(IMAGENET_MEAN_RGB.map((m) => m * 255));
          const std = tf.tensor1d(IMAGENET_STD_RGB.map((s) => s * 255));
          return tf.div(tf.sub(x, mean), std) as tf.Tensor4D;
        }
        case 'caffe-bgr-mean': {
          const bgr = tf.reverse(x, 3);
          return tf.sub(bgr, tf.tensor1d(CAFFE_MEAN_BGR)) as tf.Tensor4D;
        }
        default: {
          const never: never = this.normalization;
          throw new Error(`unknown normalization ${String(never)}`);
        }
      }
    });
  }

  /** Multiply-adds per image of `encode` (trunk; resampling is free), plus the classifier head when asked. */
  multiplyAdds(options: { includeClassifier?: boolean } = {}): number {
    const head = options.includeClassifier && this.classifier ? this.outputChannels * this.classifierClasses : 0;
    return this.trunkMultiplyAdds() + head;
  }

  private assertImages(images: tf.Tensor4D, argument: string): void {
    const s = this.inputSize;
    const shape = images.shape;
    if (images.rank !== 4 || shape[1] !== s || shape[2] !== s || shape[3] !== 3) {
      throw new ShapeError(this.getClassName(), argument, `expected shape [?, ${s}, ${s}, 3], found [${shape.join(', ')}]`);
    }
  }

  override call(inputs: tf.Tensor | tf.Tensor[], kwargs: Record<string, unknown>): tf.Tensor {
    return this.encode((Array.isArray(inputs) ? inputs[0]! : inputs) as tf.Tensor4D, kwargs as ForwardOptions);
  }

  override computeOutputShape(inputShape: tfl.Shape): tfl.Shape {
    return [inputShape[0] ?? null, this.gridSize, this.gridSize, this.outputChannels];
  }

  /** Frees every weight (and cached folded weights) of the encoder. */
  override dispose(): ReturnType<S2Layer['dispose']> {
    return disposeLayerTree(this);
  }

  override getConfig(): tf.serialization.ConfigDict {
    return { ...super.getConfig(), ...(this.encoderConfig() as unknown as tf.serialization.ConfigDict) };
  }
}
