import * as tf from '@tensorflow/tfjs-core';
import { SeededRng } from '../rng';

/** A float32 tensor of seeded standard-normal values times `scale`. */
export function randomTensor(shape: number[], seed: number, scale = 1): tf.Tensor {
  const rng = new SeededRng(seed);
  const size = shape.reduce((a, b) => a * b, 1);
  const values = new Float32Array(size);
  for (let i = 0; i < size; i++) values[i] = scale * rng.normal();
  return tf.tensor(values, shape, 'float32');
}

/**
 * A float32 tensor holding a seeded permutation of distinct values `spacing` apart, centred on 0. With a
 * finite-difference step below spacing/2, max/min/relu kinks are never crossed, so per-element checks of
 * piecewise-linear ops are exact.
 */
export function distinctTensor(shape: number[], seed: number, spacing = 0.1): tf.Tensor {
  const size = shape.reduce((a, b) => a * b, 1);
  const order = new SeededRng(seed).shuffle(Array.from({ length: size }, (_, i) => i));
  const values = new Float32Array(size);
  for (let i = 0; i < size; i++) values[i] = (order[i]! - (size - 1) / 2) * spacing;
  return tf.tensor(values, shape, 'float32');
}

/** Int32 tokens [rows, length] drawn uniformly from `low..vocab-1` (default low 1: no `<pad>`). */
export function randomTokens(rows: number, length: number, vocab: number, seed: number, low = 1): tf.Tensor2D {
  const rng = new SeededRng(seed);
  const values = Int32Array.from({ length: rows * length }, () => low + rng.int(vocab - low));
  return tf.tensor2d(values, [rows, length], 'int32');
}
