import * as tf from '@tensorflow/tfjs-core';
import type * as tfl from '@tensorflow/tfjs-layers';
import { S2Layer, type LayerVariable, type S2LayerArgs } from '../layer';
import { ShapeError } from '../errors';

/** Sinusoidal position table [length, dim] (Vaswani et al. 2017): sin on even, cos on odd channels. */
export function sinusoidalTable(length: number, dim: number, offset = 0): Float32Array {
  const out = new Float32Array(length * dim);
  for (let pos = 0; pos < length; pos++) {
    for (let i = 0; i < dim; i++) {
      const rate = 1 / 10000 ** ((2 * Math.floor(i / 2)) / dim);
      const angle = (pos + offset) * rate;
      out[pos * dim + i] = i % 2 === 0 ? Math.sin(angle) : Math.cos(angle);
    }
  }
  return out;
}

export function sinusoidalPositions(length: number, dim: number, offset = 0): tf.Tensor2D {
  return tf.tensor2d(sinusoidalTable(length, dim, offset), [length, dim]);
}

/**
 * 2-D sinusoidal table [G*G, dim]: the first half of the channels encodes the row, the second the column.
 */
export function sinusoidal2dTable(grid: number, dim: number): Float32Array {
  if (dim % 2 !== 0) throw new ShapeError('sinusoidal2dTable', 'dim', `must be even, found ${dim}`);
  const half = dim / 2;
  const rows = sinusoidalTable(grid, half);
  const out = new Float32Array(grid * grid * dim);
  for (let r = 0; r < grid; r++) {
    for (let c = 0; c < grid; c++) {
      const base = (r * grid + c) * dim;
      out.set(rows.subarray(r * half, (r + 1) * half), base);
      out.set(rows.subarray(c * half, (c + 1) * half), base + half);
    }
  }
  return out;
}

export interface LearnedPositions1DArgs extends S2LayerArgs {
  maxLength: number;
  dim: number;
}

/** Learned 1-D positions: a table [maxLength, dim]; `forward(length, offset)` returns rows offset..offset+length. */
export class LearnedPositions1D extends S2Layer {
  static readonly className = 'LearnedPositions1D';
  readonly maxLength: number;
  readonly dim: number;
  table!: LayerVariable;

  constructor(args: LearnedPositions1DArgs) {
    super(args);
    this.maxLength = args.maxLength;
    this.dim = args.dim;
  }

  override build(): void {
    this.table = this.addSeededWeight('positions', [this.maxLength, this.dim], { kind: 'normal', std: 0.02 });
    this.built = true;
  }

  forward(length: number, offset = 0): tf.Tensor2D {
    this.ensureBuilt([null]);
    if (offset + length > this.maxLength) {
      throw new ShapeError('LearnedPositions1D', 'length', `positions ${offset}..${offset + length - 1} exceed maxLength ${this.maxLength}`);
    }
    return tf.tidy(() => tf.slice(this.table.read(), [offset, 0], [length, this.dim]) as tf.Tensor2D);
  }

  override call(inputs: tf.Tensor | tf.Tensor[]): tf.Tensor {
    const x = Array.isArray(inputs) ? inputs[0]! : inputs;
    return tf.tidy(() => tf.add(x, this.forward(x.shape[1]!)));
  }

  override computeOutputShape(inputShape: tfl.Shape): tfl.Shape {
    return inputShape;
  }

  override getConfig(): tf.serialization.ConfigDict {
    return { ...super.getConfig(), maxLength: this.maxLength, dim: this.dim, seed: this.seed };
  }
}

export interface LearnedPositions2DArgs extends S2LayerArgs {
  grid: number;
  dim: number;
}

/**
 * Learned 2-D positions (spec section 4): a row table [G, dim/2] and a column table [G, dim/2], concatenated per
 * cell into [G*G, dim] in row-major token order.
 */
export class LearnedPositions2D extends S2Layer {
  static readonly className = 'LearnedPositions2D';
  readonly grid: number;
  readonly dim: number;
  rows!: LayerVariable;
  columns!: LayerVariable;

  constructor(args: LearnedPositions2DArgs) {
    super(args);
    if (args.dim % 2 !== 0) throw new ShapeError('LearnedPositions2D', 'dim', `must be even, found ${args.dim}`);
    this.grid = args.grid;
    this.dim = args.dim;
  }

  override build(): void {
    this.rows = this.addSeededWeight('rows', [this.grid, this.dim / 2], { kind: 'normal', std: 0.02 });
    this.columns = this.addSeededWeight('columns', [this.grid, this.dim / 2], { kind: 'normal', std: 0.02 });
    this.built = true;
  }

  /** The table [G*G, dim]. */
  forward(): tf.Tensor2D {
    this.ensureBuilt([null]);
    const g = this.grid;
    const half = this.dim / 2;
    return tf.tidy(() => {
      const rows = tf.tile(tf.reshape(this.rows.read(), [g, 1, half]), [1, g, 1]);
      const cols = tf.tile(tf.reshape(this.columns.read(), [1, g, half]), [g, 1, 1]);
      return tf.reshape(tf.concat([rows, cols], -1), [g * g, this.dim]) as tf.Tensor2D;
    });
  }

  override call(inputs: tf.Tensor | tf.Tensor[]): tf.Tensor {
    const x = Array.isArray(inputs) ? inputs[0]! : inputs;
    if (x.shape[1] !== this.grid * this.grid) {
      throw new ShapeError('LearnedPositions2D', 'tokens', `expected ${this.grid * this.grid} tokens, found ${x.shape[1]}`);
    }
    return tf.tidy(() => tf.add(x, this.forward()));
  }

  override computeOutputShape(inputShape: tfl.Shape): tfl.Shape {
    return inputShape;
  }

  override getConfig(): tf.serialization.ConfigDict {
    return { ...super.getConfig(), grid: this.grid, dim: this.dim, seed: this.seed };
  }
}

/**
 * Decoder input for token ids [B, T] at positions offset..offset+T-1 (Vaswani et al. 2017, plus learned positions):
 * `sqrt(dim) * embedding(tokens) + sinusoidal(pos) + learned(pos)`, shape [B, T, dim]. `sinusoid` is a
 * `sinusoidalTable(maxLength, dim)` the caller keeps. Dropout is the caller's.
 */
export function embedTokens(
  embedding: { forward(ids: tf.Tensor): tf.Tensor; dim: number },
  learnedPositions: LearnedPositions1D,
  sinusoid: Float32Array,
  tokens: tf.Tensor2D,
  offset = 0,
): tf.Tensor3D {
  const dim = embedding.dim;
  const length = tokens.shape[1];
  return tf.tidy(() => {
    const words = tf.mul(embedding.forward(tokens), Math.sqrt(dim));
    const fixed = tf.tensor2d(sinusoid.subarray(offset * dim, (offset + length) * dim), [length, dim]);
    return tf.add(words, tf.add(fixed, learnedPositions.forward(length, offset))) as tf.Tensor3D;
  });
}
