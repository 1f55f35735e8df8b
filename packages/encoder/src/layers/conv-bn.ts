import * as tf from '@tensorflow/tfjs-core';
import type * as tfl from '@tensorflow/tfjs-layers';
import { BatchNorm, Conv2D, S2Layer, ShapeError, type ForwardOptions, type S2LayerArgs } from '@s2cpnet/core';

export type ConvActivation = 'relu' | 'relu6' | 'linear';

/**
 * Padding of a convolution: TF's `'same'` rule (extra row/column at the bottom/right for even sizes and stride 2,
 * what Keras' MobileNet weights expect) or an explicit symmetric zero padding (torchvision, and Keras' ResNet50 with
 * its `ZeroPadding2D` layers). The two differ for strided convolutions, so a pretrained network only reproduces its
 * original outputs with the padding it was trained with.
 */
export type ConvPadding = 'same' | number;

export interface ConvBnArgs extends S2LayerArgs {
  inputChannels: number;
  filters: number;
  kernelSize: number;
  strides?: number;
  padding?: ConvPadding;
  /** One filter per input channel (MobileNet); `filters` must equal `inputChannels`. */
  depthwise?: boolean;
  /** Activation after batch norm. Default `relu`. */
  activation?: ConvActivation;
  batchNormEpsilon?: number;
  batchNormMomentum?: number;
}

interface FoldedWeights {
  sources: readonly object[];
  kernel: tf.Tensor4D;
  bias: tf.Tensor1D;
}

/**
 * Convolution (no bias) + batch norm + activation: the unit both backbones are made of.
 *
 * Three paths, chosen per call:
 * - training call on a trainable layer: conv, batch norm with batch statistics (updates the moving averages),
 *   activation; every step differentiable (and any cached folded copy is released);
 * - inference call on a trainable layer while gradients are recorded: batch norm folded into the kernel and a bias
 *   on the fly (differentiable with respect to all weights), then one `tf.fused.conv2d` with bias and activation;
 * - otherwise (a frozen layer, any call; or an inference call outside a gradient tape): the folded kernel and bias
 *   are computed once and cached until one of the five source variables is written again (a written variable gets
 *   a new data id), so the backbone costs exactly one fused conv per unit.
 */
export class ConvBn extends S2Layer {
  static readonly className = 'ConvBn';
  readonly inputChannels: number;
  readonly filters: number;
  readonly kernelSize: number;
  readonly strides: number;
  readonly padding: ConvPadding;
  readonly depthwise: boolean;
  readonly activation: ConvActivation;
  readonly batchNormEpsilon: number;
  readonly batchNormMomentum: number;
  readonly conv: Conv2D;
  readonly bn: BatchNorm;
  private folded: FoldedWeights | null = null;

  constructor(args: ConvBnArgs) {
    super(args);
    this.inputChannels = args.inputChannels;
    this.filters = args.filters;
    this.kernelSize = args.kernelSize;
    this.strides = args.strides ?? 1;
    this.padding = args.padding ?? 'same';
    this.depthwise = args.depthwise ?? false;
    this.activation = args.activation ?? 'relu';
    this.batchNormEpsilon = args.batchNormEpsilon ?? 1e-3;
    this.batchNormMomentum = args.batchNormMomentum ?? 0.9;
    this.conv = this.child(
      'conv',
      new Conv2D({
        inputChannels: this.inputChannels,
        filters: this.filters,
        kernelSize: this.kernelSize,
        strides: this.strides,
        padding: 'valid',
        useBias: false,
        depthwise: this.depthwise,
        seed: this.childSeed('conv'),
      }),
    );
    this.bn = this.child(
      'bn',
      new BatchNorm({ channels: this.filters, epsilon: this.batchNormEpsilon, momentum: this.batchNormMomentum, seed: this.childSeed('bn') }),
    );
  }

  override build(): void {
    this.buildChild(this.conv, [null, null, null, this.inputChannels]);
    this.buildChild(this.bn, [null, null, null, this.filters]);
    this.built = true;
  }

  forward(x: tf.Tensor4D, options?: ForwardOptions): tf.Tensor4D {
    this.ensureBuilt([null, null, null, this.inputChannels]);
    if (x.rank !== 4 || x.shape[3] !== this.inputChannels) {
      throw new ShapeError(`ConvBn(${this.name})`, 'x', `expected shape [?, ?, ?, ${this.inputChannels}], found [${x.shape.join(', ')}]`);
    }
    const frozen = !this.trainable || !this.bn.trainable;
    if (!frozen && options?.training) {
      // The weights are about to change every step: a cached folded copy would only occupy memory.
      this.releaseFolded();
      return this.trainingForward(x);
    }
    // Outside a gradient tape nothing needs the fold to be differentiable, so trainable units reuse the cache too
    // (evaluation during fine-tuning runs at frozen speed); tfjs' own fused ops make the same test.
    const recordingGradients = tf.engine().state.gradientDepth > 0;
    if (frozen || !recordingGradients) {
      const { kernel, bias } = this.cachedFoldedWeights();
      return this.fusedConv(x, kernel, bias);
    }
    return tf.tidy(() => {
      const { kernel, bias } = this.foldWeights();
      return this.fusedConv(x, kernel, bias);
    });
  }

  /** Conv, batch norm with batch statistics, activation; the explicit path gradients flow through in training. */
  private trainingForward(x: tf.Tensor4D): tf.Tensor4D {
    return tf.tidy(() => {
      const kernel = this.conv.kernel.read() as tf.Tensor4D;
      const pad = this.padding;
      const z = this.depthwise ? tf.depthwiseConv2d(x, kernel, this.strides, pad) : tf.conv2d(x, kernel, this.strides, pad);
      const normalized = this.bn.forward(z, { training: true }) as tf.Tensor4D;
      return applyActivation(normalized, this.activation);
    });
  }

  private fusedConv(x: tf.Tensor4D, kernel: tf.Tensor4D, bias: tf.Tensor1D): tf.Tensor4D {
    const common = { x, filter: kernel, strides: this.strides, pad: this.padding, bias, activation: this.activation } as const;
    return this.depthwise ? tf.fused.depthwiseConv2d(common) : tf.fused.conv2d(common);
  }

  /** Batch norm folded into the convolution: kernel * scale, beta - mean * scale, scale = gamma / sqrt(var + eps). */
  private foldWeights(): { kernel: tf.Tensor4D; bias: tf.Tensor1D } {
    return tf.tidy(() => {
      const scale = tf.div(this.bn.gamma.read(), tf.sqrt(tf.add(this.bn.movingVariance.read(), this.batchNormEpsilon)));
      const kernelScale = this.depthwise ? tf.reshape(scale, [1, 1, this.filters, 1]) : scale;
      const kernel = tf.mul(this.conv.kernel.read(), kernelScale) as tf.Tensor4D;
      const bias = tf.sub(this.bn.beta.read(), tf.mul(this.bn.movingMean.read(), scale)) as tf.Tensor1D;
      return { kernel, bias };
    });
  }

  private cachedFoldedWeights(): FoldedWeights {
    const sources = [this.conv.kernel, this.bn.gamma, this.bn.beta, this.bn.movingMean, this.bn.movingVariance].map(
      (v) => v.read().dataId,
    );
    const cached = this.folded;
    if (cached && cached.sources.every((id, i) => id === sources[i])) return cached;
    this.releaseFolded();
    const { kernel, bias } = this.foldWeights();
    // Kept so that an enclosing tidy() of the caller does not dispose the cache.
    tf.keep(kernel);
    tf.keep(bias);
    this.folded = { sources, kernel, bias };
    return this.folded;
  }

  private releaseFolded(): void {
    if (this.folded) {
      this.folded.kernel.dispose();
      this.folded.bias.dispose();
      this.folded = null;
    }
  }

  /** Output side of a square input of side `size`. */
  outputSize(size: number): number {
    if (this.padding === 'same') return Math.ceil(size / this.strides);
    return Math.floor((size + 2 * this.padding - this.kernelSize) / this.strides) + 1;
  }

  /** Multiply-adds of one forward pass on a square input of side `size` (per image; BN folded, so conv only). */
  multiplyAdds(size: number): number {
    const out = this.outputSize(size);
    const perOutput = this.kernelSize * this.kernelSize * (this.depthwise ? 1 : this.inputChannels);
    return out * out * this.filters * perOutput;
  }

  override call(inputs: tf.Tensor | tf.Tensor[], kwargs: Record<string, unknown>): tf.Tensor {
    return this.forward((Array.isArray(inputs) ? inputs[0]! : inputs) as tf.Tensor4D, kwargs as ForwardOptions);
  }

  override computeOutputShape(inputShape: tfl.Shape): tfl.Shape {
    const [b, h, w] = inputShape;
    return [b ?? null, h == null ? null : this.outputSize(h), w == null ? null : this.outputSize(w), this.filters];
  }

  /** Frees the cached folded kernel and bias of a frozen unit (they are rebuilt on the next call). */
  releaseCachedWeights(): void {
    this.releaseFolded();
  }

  override dispose(): ReturnType<S2Layer['dispose']> {
    return disposeLayerTree(this);
  }

  override getConfig(): tf.serialization.ConfigDict {
    return {
      ...super.getConfig(),
      inputChannels: this.inputChannels,
      filters: this.filters,
      kernelSize: this.kernelSize,
      strides: this.strides,
      padding: this.padding,
      depthwise: this.depthwise,
      activation: this.activation,
      batchNormEpsilon: this.batchNormEpsilon,
      batchNormMomentum: this.batchNormMomentum,
      seed: this.seed,
    };
  }
}

export function applyActivation<T extends tf.Tensor>(x: T, activation: ConvActivation): T {
  if (activation === 'relu') return tf.relu(x);
  if (activation === 'relu6') return tf.relu6(x);
  return x;
}

/** Sets `trainable` on a layer and every descendant (tfjs' setter only touches the layer's own weights). */
export function setTrainableDeep(layer: tfl.layers.Layer, trainable: boolean): void {
  layer.trainable = trainable;
  if (layer instanceof S2Layer) for (const child of layer.children().values()) setTrainableDeep(child, trainable);
}

/**
 * Disposes a layer tree: every weight exactly once, and the cached folded weights of every ConvBn in it (which
 * core's `S2Layer.dispose`, walking weights only, would leave behind). Also marks each layer disposed for tfjs.
 */
export function disposeLayerTree(layer: tfl.layers.Layer): { refCountAfterDispose: number; numDisposedVariables: number } {
  const variables = new Set<tfl.LayerVariable>();
  const visit = (l: tfl.layers.Layer): void => {
    if (l instanceof ConvBn) l.releaseCachedWeights();
    for (const w of l.weights) variables.add(w);
    (l as unknown as { _refCount: number | null })._refCount = 0;
    if (l instanceof S2Layer) for (const child of l.children().values()) visit(child);
  };
  visit(layer);
  for (const v of variables) v.dispose();
  return { refCountAfterDispose: 0, numDisposedVariables: variables.size };
}
