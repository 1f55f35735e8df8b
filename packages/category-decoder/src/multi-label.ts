import * as tf from '@tensorflow/tfjs-core';
import type * as tfl from '@tensorflow/tfjs-layers';
import {
  Linear,
  S2Layer,
  ShapeError,
  assertRank,
  type CategoryHead,
  type ForwardOptions,
  type LayerVariable,
  type S2LayerArgs,
} from '@s2cpnet/core';
import { resolveMultiLabelSizes, type ClassifierKind, type MultiLabelSizes } from './config';
import { binaryCrossEntropyWithLogits } from './loss';
import { QueryDecoderLayer } from './query-decoder-layer';

export interface MultiLabelCategoryDecoderArgs extends S2LayerArgs, MultiLabelSizes {}

/** What targets a category head's `loss` expects. */
export type CategoryTargetKind = 'multi-hot' | 'sequence';

/**
 * The paper's multi-target category decoder (spec section 6), a one-layer query decoder with binary
 * cross-entropy:
 * ```
 * Q   = learned class queries [K, dDec]             (one per noun class)
 * M   = Linear(memoryWidth -> dDec)(memory)
 * x   = LN(Q + SelfMHA(Q))                            among the queries
 * x   = LN(x + MHA(x, M, M))                          queries -> memory
 * x   = LN(x + FFN(x))
 * logit_k = <x_k, w_k> + b_k    ('per-class', default)   or   Linear(dDec -> 1)(x_k)   ('shared')
 * ```
 * The self-attention among the queries does not depend on the image, so it is computed once per call and
 * broadcast over the batch (in training its dropout mask is therefore shared by the images of a batch).
 */
export class MultiLabelCategoryDecoder extends S2Layer implements CategoryHead {
  static readonly className = 'MultiLabelCategoryDecoder';
  readonly targetKind: CategoryTargetKind = 'multi-hot';
  readonly numClasses: number;
  readonly memoryWidth: number;
  readonly dim: number;
  readonly numHeads: number;
  readonly ffnDim: number;
  readonly dropoutRate: number;
  readonly classifier: ClassifierKind;
  readonly memoryProjection: Linear;
  readonly layer: QueryDecoderLayer;
  readonly sharedClassifier: Linear | null;
  classQueries!: LayerVariable;
  classWeights: LayerVariable | null = null;
  classBiases: LayerVariable | null = null;

  constructor(args: MultiLabelCategoryDecoderArgs) {
    super(args);
    const sizes = resolveMultiLabelSizes(args);
    if (sizes.classifier !== 'per-class' && sizes.classifier !== 'shared') {
      throw new ShapeError('MultiLabelCategoryDecoder', 'classifier', `expected 'per-class' or 'shared', found ${JSON.stringify(sizes.classifier)}`);
    }
    this.numClasses = sizes.numClasses;
    this.memoryWidth = sizes.memoryWidth;
    this.dim = sizes.dim;
    this.numHeads = sizes.numHeads;
    this.ffnDim = sizes.ffnDim;
    this.dropoutRate = sizes.dropout;
    this.classifier = sizes.classifier;
    this.memoryProjection = this.child(
      'memoryProjection',
      new Linear({ inputDim: this.memoryWidth, units: this.dim, seed: this.childSeed('memoryProjection') }),
    );
    this.layer = this.child(
      'layer',
      new QueryDecoderLayer({ dim: this.dim, numHeads: this.numHeads, ffnDim: this.ffnDim, dropout: this.dropoutRate, seed: this.childSeed('layer') }),
    );
    this.sharedClassifier =
      this.classifier === 'shared' ? this.child('classifier', new Linear({ inputDim: this.dim, units: 1, seed: this.childSeed('classifier') })) : null;
  }

  override build(): void {
    this.classQueries = this.addSeededWeight('classQueries', [this.numClasses, this.dim], { kind: 'normal', std: this.dim ** -0.5 });
    if (this.classifier === 'per-class') {
      const limit = Math.sqrt(6 / (this.dim + 1));
      this.classWeights = this.addSeededWeight('classWeights', [this.numClasses, this.dim], { kind: 'uniform', limit });
      this.classBiases = this.addSeededWeight('classBiases', [this.numClasses], { kind: 'zeros' });
    }
    this.memoryProjection.ensureBuilt([null, this.memoryWidth]);
    this.layer.ensureBuilt([null, this.dim]);
    this.sharedClassifier?.ensureBuilt([null, this.dim]);
    this.built = true;
  }

  /** `memory` [B,N,memoryWidth] -> one logit per class [B,K]. */
  logits(memory: tf.Tensor3D, options: ForwardOptions = {}): tf.Tensor2D {
    this.ensureBuilt([null, this.memoryWidth]);
    assertRank('MultiLabelCategoryDecoder', 'memory', memory, 3);
    if (memory.shape[2] !== this.memoryWidth) {
      throw new ShapeError('MultiLabelCategoryDecoder', 'memory', `expected width ${this.memoryWidth}, found shape [${memory.shape.join(', ')}]`);
    }
    const batch = memory.shape[0];
    return tf.tidy(() => {
      const projected = this.memoryProjection.forward(memory) as tf.Tensor3D;
      const queries = tf.reshape(this.classQueries.read(), [1, this.numClasses, this.dim]) as tf.Tensor3D;
      // The first sub-layer (self-attention among the class queries) does not depend on the image: once per call.
      const afterSelf = this.layer.selfBlock(queries, this.layer.selfAttention.projectKeyValue(queries), 0, options);
      const classFeatures = this.layer.memoryBlock(
        tf.tile(afterSelf, [batch, 1, 1]) as tf.Tensor3D,
        this.layer.crossAttention.projectKeyValue(projected),
        options,
      ); // [B,K,dim]
      if (this.sharedClassifier) return tf.reshape(this.sharedClassifier.forward(classFeatures), [batch, this.numClasses]) as tf.Tensor2D;
      return tf.add(tf.sum(tf.mul(classFeatures, this.classWeights!.read()), -1), this.classBiases!.read()) as tf.Tensor2D;
    });
  }

  /** Binary cross-entropy of `logits` [B,K] against the multi-hot noun sets `targets` [B,K] (mean over B*K). */
  loss(logits: tf.Tensor2D, targets: tf.Tensor2D): tf.Scalar {
    if (targets.shape[1] !== this.numClasses) {
      throw new ShapeError('MultiLabelCategoryDecoder', 'targets', `expected ${this.numClasses} classes, found shape [${targets.shape.join(', ')}]`);
    }
    return binaryCrossEntropyWithLogits(logits, targets);
  }

  override call(inputs: tf.Tensor | tf.Tensor[], kwargs: Record<string, unknown>): tf.Tensor {
    const memory = (Array.isArray(inputs) ? inputs[0] : inputs) as tf.Tensor3D;
    return this.logits(memory, kwargs as ForwardOptions);
  }

  override computeOutputShape(inputShape: tfl.Shape | tfl.Shape[]): tfl.Shape {
    const first = (Array.isArray(inputShape[0]) ? inputShape[0] : inputShape) as tfl.Shape;
    return [first[0] ?? null, this.numClasses];
  }

  override getConfig(): tf.serialization.ConfigDict {
    return {
      ...super.getConfig(),
      numClasses: this.numClasses,
      memoryWidth: this.memoryWidth,
      dim: this.dim,
      numHeads: this.numHeads,
      ffnDim: this.ffnDim,
      dropout: this.dropoutRate,
      classifier: this.classifier,
      seed: this.seed,
    };
  }
}
