import * as tf from '@tensorflow/tfjs-core';
import type * as tfl from '@tensorflow/tfjs-layers';
import { S2Layer, dropout, type ForwardOptions, type S2LayerArgs } from '../layer';
import { Linear } from './linear';

export interface FeedForwardArgs extends S2LayerArgs {
  dim: number;
  hiddenDim: number;
  dropout?: number;
}

/** Position-wise feed-forward block: `Linear(d -> h) -> ReLU -> dropout -> Linear(h -> d)`. */
export class FeedForward extends S2Layer {
  static readonly className = 'FeedForward';
  readonly dim: number;
  readonly hiddenDim: number;
  readonly dropoutRate: number;
  readonly inner: Linear;
  readonly outer: Linear;

  constructor(args: FeedForwardArgs) {
    super(args);
    this.dim = args.dim;
    this.hiddenDim = args.hiddenDim;
    this.dropoutRate = args.dropout ?? 0.1;
    this.inner = this.child('inner', new Linear({ inputDim: this.dim, units: this.hiddenDim, seed: this.childSeed('inner') }));
    this.outer = this.child('outer', new Linear({ inputDim: this.hiddenDim, units: this.dim, seed: this.childSeed('outer') }));
  }

  override build(): void {
    this.buildChild(this.inner, [null, this.dim]);
    this.buildChild(this.outer, [null, this.hiddenDim]);
    this.built = true;
  }

  forward(x: tf.Tensor, options?: ForwardOptions): tf.Tensor {
    this.ensureBuilt([null, this.dim]);
    return tf.tidy(() => {
      const h = dropout(tf.relu(this.inner.forward(x)), this.dropoutRate, this.dropoutSeed(options, 'hidden'));
      return this.outer.forward(h);
    });
  }

  override call(inputs: tf.Tensor | tf.Tensor[], kwargs: Record<string, unknown>): tf.Tensor {
    return this.forward(Array.isArray(inputs) ? inputs[0]! : inputs, kwargs as ForwardOptions);
  }

  override computeOutputShape(inputShape: tfl.Shape): tfl.Shape {
    return inputShape;
  }

  override getConfig(): tf.serialization.ConfigDict {
    return { ...super.getConfig(), dim: this.dim, hiddenDim: this.hiddenDim, dropout: this.dropoutRate, seed: this.seed };
  }
}
