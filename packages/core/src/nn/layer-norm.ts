import * as tf from '@tensorflow/tfjs-core';
import type * as tfl from '@tensorflow/tfjs-layers';
import { S2Layer, type LayerVariable, type S2LayerArgs } from '../layer';

export interface LayerNormArgs extends S2LayerArgs {
  dim: number;
  epsilon?: number;
}

/** Layer normalisation over the last axis, with learned scale and offset (Ba et al. 2016). */
export class LayerNorm extends S2Layer {
  static readonly className = 'LayerNorm';
  readonly dim: number;
  readonly epsilon: number;
  gamma!: LayerVariable;
  beta!: LayerVariable;

  constructor(args: LayerNormArgs) {
    super(args);
    this.dim = args.dim;
    this.epsilon = args.epsilon ?? 1e-5;
  }

  override build(): void {
    this.gamma = this.addSeededWeight('gamma', [this.dim], { kind: 'ones' });
    this.beta = this.addSeededWeight('beta', [this.dim], { kind: 'zeros' });
    this.built = true;
  }

  forward(x: tf.Tensor): tf.Tensor {
    this.ensureBuilt([null, this.dim]);
    return tf.tidy(() => {
      const { mean, variance } = tf.moments(x, -1, true);
      const normalized = tf.mul(tf.sub(x, mean), tf.rsqrt(tf.add(variance, this.epsilon)));
      return tf.add(tf.mul(normalized, this.gamma.read()), this.beta.read());
    });
  }

  override call(inputs: tf.Tensor | tf.Tensor[]): tf.Tensor {
    return this.forward(Array.isArray(inputs) ? inputs[0]! : inputs);
  }

  override computeOutputShape(inputShape: tfl.Shape): tfl.Shape {
    return inputShape;
  }

  override getConfig(): tf.serialization.ConfigDict {
    return { ...super.getConfig(), dim: this.dim, epsilon: this.epsilon, seed: this.seed };
  }
}
