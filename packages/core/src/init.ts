import * as tf from '@tensorflow/tfjs-core';
import { SeededRng } from './rng';

/** How a weight starts. Every random kind draws from a `SeededRng`, so initial weights depend on the seed only. */
export type WeightInit =
  | { kind: 'zeros' }
  | { kind: 'ones' }
  | { kind: 'constant'; value: number }
  | { kind: 'glorot-uniform' }
  | { kind: 'he-normal' }
  | { kind: 'normal'; std: number }
  | { kind: 'uniform'; limit: number };

/** fan-in / fan-out in the Keras convention: the last axis is the output, the rest (but the second-last) is the receptive field. */
export function fans(shape: readonly number[]): { fanIn: number; fanOut: number } {
  if (shape.length === 0) return { fanIn: 1, fanOut: 1 };
  if (shape.length === 1) return { fanIn: shape[0]!, fanOut: shape[0]! };
  if (shape.length === 2) return { fanIn: shape[0]!, fanOut: shape[1]! };
  const receptive = shape.slice(0, -2).reduce((a, b) => a * b, 1);
  return { fanIn: receptive * shape[shape.length - 2]!, fanOut: receptive * shape[shape.length - 1]! };
}

/** Makes the initial values of a weight as a Float32Array. */
export function initialValues(shape: readonly number[], init: WeightInit, seed: number): Float32Array {
  const size = shape.reduce((a, b) => a * b, 1);
  const out = new Float32Array(size);
  const rng = new SeededRng(seed);
  const { fanIn, fanOut } = fans(shape);
  switch (init.kind) {
    case 'zeros':
      return out;
    case 'ones':
      return out.fill(1);
    case 'constant':
      return out.fill(init.value);
    case 'glorot-uniform': {
      const limit = Math.sqrt(6 / (fanIn + fanOut));
      for (let i = 0; i < size; i++) out[i] = rng.uniform(-limit, limit);
      return out;
    }
    case 'he-normal': {
      const std = Math.sqrt(2 / fanIn);
      for (let i = 0; i < size; i++) out[i] = std * rng.normal();
      return out;
    }
    case 'normal':
      for (let i = 0; i < size; i++) out[i] = init.std * rng.normal();
      return out;
    case 'uniform':
      for (let i = 0; i < size; i++) out[i] = rng.uniform(-init.limit, init.limit);
      return out;
    default: {
      const never: never = init;
      throw new Error(`unknown weight init ${JSON.stringify(never)}`);
    }
  }
}

export function initialTensor(shape: readonly number[], init: WeightInit, seed: number): tf.Tensor {
  return tf.tensor(initialValues(shape, init, seed), shape as number[], 'float32');
}
