import * as tf from '@tensorflow/tfjs-core';
import type * as tfl from '@tensorflow/tfjs-layers';
import { S2Layer, type LayerVariable, type S2LayerArgs } from '../layer';
import { ShapeError } from '../errors';

export interface EmbeddingArgs extends S2LayerArgs {
  vocabSize: number;
  dim: number;
}

/**
 * Token embedding by `gather`. Its gradient is an `UnsortedSegmentSum`, which wasm lacks and cpu computes in
 * O(vocab·N·d): `registerS2CPNetKernels()` installs a scatter-add for both.
 */
export class Embedding extends S2Layer {
  static readonly className = 'Embedding';
  readonly vocabSize: number;
  readonly dim: number;
  table!: LayerVariable;

  constructor(args: EmbeddingArgs) {
    super(args);
    this.vocabSize = args.vocabSize;
    this.dim = args.dim;
  }

  override build(): void {
    this.table = this.addSeededWeight('embeddings', [this.vocabSize, this.dim], { kind: 'normal', std: this.dim ** -0.5 });
    this.built = true;
  }

  /** `ids` int32 of any shape -> [...ids.shape, dim] */
  forward(ids: tf.Tensor): tf.Tensor {
    this.ensureBuilt([null]);
    if (ids.dtype !== 'int32') throw new ShapeError('Embedding', 'ids', `expected dtype int32, found ${ids.dtype}`);
    return tf.tidy(() => {
      const flat = tf.reshape(ids, [-1]);
      return tf.reshape(tf.gather(this.table.read(), flat), [...ids.shape, this.dim]);
    });
  }

  override call(inputs: tf.Tensor | tf.Tensor[]): tf.Tensor {
    return this.forward(Array.isArray(inputs) ? inputs[0]! : inputs);
  }

  override computeOutputShape(inputShape: tfl.Shape): tfl.Shape {
    return [...inputShape, this.dim];
  }

  override getConfig(): tf.serialization.ConfigDict {
    return { ...super.getConfig(), vocabSize: this.vocabSize, dim: this.dim, seed: this.seed };
  }
}
