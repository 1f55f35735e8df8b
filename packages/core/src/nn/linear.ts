import * as tf from '@tensorflow/tfjs-core';
import type * as tfl from '@tensorflow/tfjs-layers';
import { S2Layer, type LayerVariable, type S2LayerArgs } from '../layer';
import { assertShape } from '../shapes';
import type { WeightInit } from '../init';

export interface LinearArgs extends S2LayerArgs {
  inputDim: number;
  units: number;
  useBias?: boolean;
  kernelInit?: WeightInit;
}

/**
 * `y = x W + b` over the last axis of a tensor of any rank >= 2. Written with a plain `matMul` on a 2-D view
 * (no transposed operands) because wasm's transposed matMul paths are 10-40x slower.
 */
export class Linear extends S2Layer {
  static readonly className = 'Linear';
  readonly inputDim: number;
  readonly units: number;
  readonly useBias: boolean;
  readonly kernelInit: WeightInit;
  kernel!: LayerVariable;
  bias: LayerVariable | null = null;

  constructor(args: LinearArgs) {
    super(args);
    this.inputDim = args.inputDim;
    this.units = args.units;
    this.useBias = args.useBias ?? true;
    this.kernelInit = args.kernelInit ?? { kind: 'glorot-uniform' };
  }

  override build(): void {
    this.kernel = this.addSeededWeight('kernel', [this.inputDim, this.units], this.kernelInit);
    if (this.useBias) this.bias = this.addSeededWeight('bias', [this.units], { kind: 'zeros' });
    this.built = true;
  }

  /** Applies the projection; `x` has shape [..., inputDim]. */
  forward(x: tf.Tensor): tf.Tensor {
    this.ensureBuilt([null, this.inputDim]);
    const last = x.shape[x.rank - 1];
    if (last !== this.inputDim) assertShape(`Linear(${this.name})`, 'x', x, [...x.shape.slice(0, -1), this.inputDim]);
    return tf.tidy(() => {
      const flat = x.rank === 2 ? x : tf.reshape(x, [-1, this.inputDim]);
      let y = tf.matMul(flat as tf.Tensor2D, this.kernel.read() as tf.Tensor2D);
      if (this.bias) y = tf.add(y, this.bias.read());
      return x.rank === 2 ? y : tf.reshape(y, [...x.shape.slice(0, -1), this.units]);
    });
  }

  override call(inputs: tf.Tensor | tf.Tensor[]): tf.Tensor {
    return this.forward(Array.isArray(inputs) ? inputs[0]! : inputs);
  }

  override computeOutputShape(inputShape: tfl.Shape): tfl.Shape {
    return [...inputShape.slice(0, -1), this.units];
  }

  override getConfig(): tf.serialization.ConfigDict {
    return { ...super.getConfig(), inputDim: this.inputDim, units: this.units, useBias: this.useBias, seed: this.seed, kernelInit: this.kernelInit as unknown as tf.serialization.ConfigDict };
  }
}
