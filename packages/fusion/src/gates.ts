import * as tf from '@tensorflow/tfjs-core';
import type * as tfl from '@tensorflow/tfjs-layers';
import { Linear, S2Layer, type S2LayerArgs } from '@s2cpnet/core';
import { linearMultiplyAdds } from './base';

/** The two per-token gate weights of a coarse fusion, each [B,N,1]. */
export interface GateWeights {
  image: tf.Tensor3D;
  mask: tf.Tensor3D;
}

export interface CoarseGateArgs extends S2LayerArgs {
  /** Width d of each view. */
  dim: number;
}

/** What a CVFF unit needs from its coarse gate. */
export interface FusionGate extends S2Layer {
  gateWeights(imageView: tf.Tensor3D, maskView: tf.Tensor3D): GateWeights;
  /** The intermediate-granularity fused map F [B,N,d]. */
  forward(imageView: tf.Tensor3D, maskView: tf.Tensor3D): tf.Tensor3D;
  multiplyAdds(tokens: number): number;
}

/**
 * Coarse fusion of one CVFF unit (spec section 5, step 2): `g = sigmoid(Linear(2d -> 2)(concat(V1, V2)))` split
 * into per-token weights g1, g2 [B,N,1], and the intermediate-granularity map `F = g1*V1 + g2*V2`.
 *
 * Weights: `projection/{kernel,bias}`.
 */
export class CoarseGate extends S2Layer implements FusionGate {
  static readonly className = 'CoarseGate';
  readonly dim: number;
  readonly projection: Linear;

  constructor(args: CoarseGateArgs) {
    super(args);
    this.dim = args.dim;
    this.projection = this.child('projection', new Linear({ inputDim: 2 * this.dim, units: 2, seed: this.childSeed('projection') }));
  }

  override build(): void {
    this.buildChild(this.projection, [null, 2 * this.dim]);
    this.built = true;
  }

  /** The gate weights g1 (image), g2 (mask). */
  gateWeights(imageView: tf.Tensor3D, maskView: tf.Tensor3D): GateWeights {
    this.ensureBuilt([null, 2 * this.dim]);
    return tf.tidy(() => {
      const gates = tf.sigmoid(this.projection.forward(tf.concat([imageView, maskView], -1)));
      const [image, mask] = tf.split(gates, 2, -1) as [tf.Tensor3D, tf.Tensor3D];
      return { image, mask };
    });
  }

  /** The fused map F = g1*V1 + g2*V2 [B,N,d]. */
  forward(imageView: tf.Tensor3D, maskView: tf.Tensor3D): tf.Tensor3D {
    return tf.tidy(() => {
      const g = this.gateWeights(imageView, maskView);
      return tf.add(tf.mul(g.image, imageView), tf.mul(g.mask, maskView)) as tf.Tensor3D;
    });
  }

  multiplyAdds(tokens: number): number {
    return linearMultiplyAdds(this.projection, tokens);
  }

  override call(inputs: tf.Tensor | tf.Tensor[]): tf.Tensor {
    const [image, mask] = inputs as tf.Tensor3D[];
    return this.forward(image!, mask!);
  }

  override computeOutputShape(inputShape: tfl.Shape | tfl.Shape[]): tfl.Shape {
    return (Array.isArray(inputShape[0]) ? inputShape[0] : inputShape) as tfl.Shape;
  }

  override getConfig(): tf.serialization.ConfigDict {
    return { ...super.getConfig(), dim: this.dim, seed: this.seed };
  }
}

/**
 * Coarse gate of the authors' released code (spec section 9):
 * `g = softmax(Linear(d -> 2)(Linear(2d -> d)(ReLU(concat(V1, V2)))))` over the 2 logits of each token, and the
 * fused map `F = g1*V1 + g2*V2 + V1 + V2`. The hidden width d of the two stacked linear layers is our choice
 * (the spec does not give it).
 *
 * Weights: `hidden/{kernel,bias}`, `logits/{kernel,bias}`.
 */
export class ReferenceCoarseGate extends S2Layer implements FusionGate {
  static readonly className = 'ReferenceCoarseGate';
  readonly dim: number;
  readonly hidden: Linear;
  readonly logits: Linear;

  constructor(args: CoarseGateArgs) {
    super(args);
    this.dim = args.dim;
    this.hidden = this.child('hidden', new Linear({ inputDim: 2 * this.dim, units: this.dim, seed: this.childSeed('hidden') }));
    this.logits = this.child('logits', new Linear({ inputDim: this.dim, units: 2, seed: this.childSeed('logits') }));
  }

  override build(): void {
    this.buildChild(this.hidden, [null, 2 * this.dim]);
    this.buildChild(this.logits, [null, this.dim]);
    this.built = true;
  }

  gateWeights(imageView: tf.Tensor3D, maskView: tf.Tensor3D): GateWeights {
    this.ensureBuilt([null, 2 * this.dim]);
    return tf.tidy(() => {
      const joint = tf.relu(tf.concat([imageView, maskView], -1));
      const gates = tf.softmax(this.logits.forward(this.hidden.forward(joint)), -1);
      const [image, mask] = tf.split(gates, 2, -1) as [tf.Tensor3D, tf.Tensor3D];
      return { image, mask };
    });
  }

  forward(imageView: tf.Tensor3D, maskView: tf.Tensor3D): tf.Tensor3D {
    return tf.tidy(() => {
      const g = this.gateWeights(imageView, maskView);
      return tf.addN([tf.mul(g.image, imageView), tf.mul(g.mask, maskView), imageView, maskView]) as tf.Tensor3D;
    });
  }

  multiplyAdds(tokens: number): number {
    return linearMultiplyAdds(this.hidden, tokens) + linearMultiplyAdds(this.logits, tokens);
  }

  override call(inputs: tf.Tensor | tf.Tensor[]): tf.Tensor {
    const [image, mask] = inputs as tf.Tensor3D[];
    return this.forward(image!, mask!);
  }

  override computeOutputShape(inputShape: tfl.Shape | tfl.Shape[]): tfl.Shape {
    return (Array.isArray(inputShape[0]) ? inputShape[0] : inputShape) as tfl.Shape;
  }

  override getConfig(): tf.serialization.ConfigDict {
    return { ...super.getConfig(), dim: this.dim, seed: this.seed };
  }
}
