import * as tf from '@tensorflow/tfjs-core';
import type * as tfl from '@tensorflow/tfjs-layers';
import {
  ConfigError,
  LearnedPositions2D,
  Linear,
  S2Layer,
  ShapeError,
  assertShape,
  dropout,
  registerLayers,
  type ForwardOptions,
  type FusionStrategy,
} from '@s2cpnet/core';

/** What the model hands a fusion factory: the sizes it derived (channels, grid, seed) plus the config's fields. */
export interface GatedSumFusionConfig {
  type: 'gated-sum';
  /** Width C1 of the image-view tokens. */
  imageChannels: number;
  /** Width C2 of the mask-view tokens. */
  maskChannels: number;
  /** Memory width d. Even (the 2-D positions split it into row and column halves). */
  dim: number;
  /** Grid side G; N = G*G tokens. */
  grid: number;
  /** Dropout on the memory in training mode. Default 0.1. */
  dropout?: number;
  seed?: number;
}

export interface GatedSumFusionArgs extends Omit<GatedSumFusionConfig, 'type'> {
  name?: string;
  trainable?: boolean;
}

function positiveInteger(field: string, value: unknown): number {
  if (typeof value !== 'number' || !Number.isInteger(value) || value < 1) {
    throw new ConfigError(`$.fusion.${field}`, `expected an integer >= 1, found ${JSON.stringify(value)}`);
  }
  return value;
}

/**
 * A user-defined fusion strategy: per token and channel, a learned gate chooses between the two views,
 *
 *   a = Linear(C1 -> d)(V1),  b = Linear(C2 -> d)(V2),  g = sigmoid(Linear(2d -> d)([a; b])),
 *   M = g * a + (1 - g) * b + P,
 *
 * with learned 2-D positions P. Memory width d, like `add`, but the mix is decided per token instead of fixed at
 * 1:1. It implements core's `FusionStrategy` contract, so the model can use it as it uses the built-in ones.
 */
export class GatedSumFusion extends S2Layer implements FusionStrategy {
  static readonly className = 'GatedSumFusion';
  readonly usesMaskView = true;
  readonly imageChannels: number;
  readonly maskChannels: number;
  readonly dim: number;
  readonly grid: number;
  readonly dropoutRate: number;
  readonly imageProjection: Linear;
  readonly maskProjection: Linear;
  readonly gate: Linear;
  readonly positions: LearnedPositions2D;

  constructor(args: GatedSumFusionArgs) {
    super({ name: args.name, trainable: args.trainable, seed: args.seed ?? 0 });
    this.imageChannels = positiveInteger('imageChannels', args.imageChannels);
    this.maskChannels = positiveInteger('maskChannels', args.maskChannels);
    this.dim = positiveInteger('dim', args.dim);
    this.grid = positiveInteger('grid', args.grid);
    if (this.dim % 2 !== 0) throw new ConfigError('$.fusion.dim', `must be even (row and column position halves), found ${this.dim}`);
    this.dropoutRate = args.dropout ?? 0.1;
    if (!(this.dropoutRate >= 0 && this.dropoutRate < 1)) {
      throw new ConfigError('$.fusion.dropout', `expected a number in [0, 1), found ${JSON.stringify(args.dropout)}`);
    }
    const d = this.dim;
    this.imageProjection = this.child('imageProjection', new Linear({ inputDim: this.imageChannels, units: d, seed: this.childSeed('imageProjection') }));
    this.maskProjection = this.child('maskProjection', new Linear({ inputDim: this.maskChannels, units: d, seed: this.childSeed('maskProjection') }));
    this.gate = this.child('gate', new Linear({ inputDim: 2 * d, units: d, seed: this.childSeed('gate') }));
    this.positions = this.child('positions', new LearnedPositions2D({ grid: this.grid, dim: d, seed: this.childSeed('positions') }));
  }

  get memoryWidth(): number {
    return this.dim;
  }

  get tokens(): number {
    return this.grid * this.grid;
  }

  override build(): void {
    this.buildChild(this.imageProjection, [null, this.imageChannels]);
    this.buildChild(this.maskProjection, [null, this.maskChannels]);
    this.buildChild(this.gate, [null, 2 * this.dim]);
    this.buildChild(this.positions, [null]);
    this.built = true;
  }

  fuse(imageTokens: tf.Tensor3D, maskTokens: tf.Tensor3D | null, options?: ForwardOptions): tf.Tensor3D {
    this.ensureBuilt([null, this.tokens, this.imageChannels]);
    const component = `GatedSumFusion(${this.name})`;
    assertShape(component, 'imageTokens', imageTokens, [null, this.tokens, this.imageChannels]);
    if (maskTokens === null) throw new ShapeError(component, 'maskTokens', 'is required by gated-sum (it reads the mask view), found null');
    assertShape(component, 'maskTokens', maskTokens, [imageTokens.shape[0], this.tokens, this.maskChannels]);
    return tf.tidy(() => {
      const a = this.imageProjection.forward(imageTokens);
      const b = this.maskProjection.forward(maskTokens);
      const g = tf.sigmoid(this.gate.forward(tf.concat([a, b], -1)));
      // g * a + (1 - g) * b, written as b + g * (a - b): one product instead of two
      const mixed = tf.add(b, tf.mul(g, tf.sub(a, b)));
      const memory = tf.add(mixed, this.positions.forward());
      return dropout(memory, this.dropoutRate, this.dropoutSeed(options, 'memory')) as tf.Tensor3D;
    });
  }

  override call(inputs: tf.Tensor | tf.Tensor[], kwargs: Record<string, unknown>): tf.Tensor {
    const list = Array.isArray(inputs) ? inputs : [inputs];
    return this.fuse(list[0] as tf.Tensor3D, (list[1] ?? null) as tf.Tensor3D | null, kwargs as ForwardOptions);
  }

  override computeOutputShape(inputShape: tfl.Shape | tfl.Shape[]): tfl.Shape {
    const first = (Array.isArray(inputShape[0]) ? inputShape[0] : inputShape) as tfl.Shape;
    return [first[0] ?? null, this.tokens, this.memoryWidth];
  }

  override getConfig(): tf.serialization.ConfigDict {
    return {
      ...super.getConfig(),
      imageChannels: this.imageChannels,
      maskChannels: this.maskChannels,
      dim: this.dim,
      grid: this.grid,
      dropout: this.dropoutRate,
      seed: this.seed,
    };
  }
}

/** The factory to add to the fusion map: `{ ...defaultFusions, 'gated-sum': createGatedSumFusion }`. */
export function createGatedSumFusion(config: GatedSumFusionConfig): GatedSumFusion {
  const { type: _type, ...args } = config;
  return new GatedSumFusion(args);
}

/** Registers the layer with tfjs serialization (only needed to deserialise it from a tfjs layer config). */
export function registerGatedSumFusion(): void {
  registerLayers([GatedSumFusion]);
}
