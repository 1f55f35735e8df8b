import * as tf from '@tensorflow/tfjs-core';
import type * as tfl from '@tensorflow/tfjs-layers';
import { S2Layer, ShapeError, assertShape, type FusionStrategy, type ForwardOptions, type Linear, type MultiHeadAttention } from '@s2cpnet/core';
import { resolveFusionDimensions, type FusionLayerArgs, type FusionRules, type ResolvedFusionDimensions } from './config';

/**
 * Shared plumbing of the built-in fusion layers: resolved sizes, input checks, the tfjs `call` adapter
 * (`[imageTokens, maskTokens]` in, memory out), `computeOutputShape` and `getConfig`.
 */
export abstract class FusionLayerBase extends S2Layer implements FusionStrategy {
  readonly imageChannels: number;
  readonly maskChannels: number;
  readonly dim: number;
  readonly grid: number;
  readonly heads: number;
  readonly units: number;
  readonly ffnMultiplier: number;
  readonly dropoutRate: number;
  abstract readonly usesMaskView: boolean;
  abstract readonly memoryWidth: number;

  protected constructor(args: FusionLayerArgs, component: string, rules: FusionRules) {
    const resolved: ResolvedFusionDimensions = resolveFusionDimensions(args, `${component}(args)`, rules);
    super({ name: args.name, trainable: args.trainable, seed: resolved.seed });
    this.imageChannels = resolved.imageChannels;
    this.maskChannels = resolved.maskChannels;
    this.dim = resolved.dim;
    this.grid = resolved.grid;
    this.heads = resolved.heads;
    this.units = resolved.units;
    this.ffnMultiplier = resolved.ffnMultiplier;
    this.dropoutRate = resolved.dropout;
  }

  /** Number of tokens N = G*G. */
  get tokens(): number {
    return this.grid * this.grid;
  }

  abstract fuse(imageTokens: tf.Tensor3D, maskTokens: tf.Tensor3D | null, options?: ForwardOptions): tf.Tensor3D;

  /** Multiply-adds of one forward pass for one sample (matrix products and convolutions). */
  abstract multiplyAdds(): number;

  /** Validates the token maps against the configured sizes; names the argument and the expected shape. */
  protected checkInputs(imageTokens: tf.Tensor3D, maskTokens: tf.Tensor3D | null): void {
    const component = `${this.getClassName()}(${this.name})`;
    assertShape(component, 'imageTokens', imageTokens, [null, this.tokens, this.imageChannels]);
    if (!this.usesMaskView) return;
    if (maskTokens === null) throw new ShapeError(component, 'maskTokens', 'is required by this fusion strategy, found null');
    assertShape(component, 'maskTokens', maskTokens, [imageTokens.shape[0], this.tokens, this.maskChannels]);
  }

  override call(inputs: tf.Tensor | tf.Tensor[], kwargs: Record<string, unknown>): tf.Tensor {
    const list = Array.isArray(inputs) ? inputs : [inputs];
    const image = list[0] as tf.Tensor3D;
    const mask = (list[1] ?? null) as tf.Tensor3D | null;
    return this.fuse(image, mask, kwargs as ForwardOptions);
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
      heads: this.heads,
      units: this.units,
      ffnMultiplier: this.ffnMultiplier,
      dropout: this.dropoutRate,
      seed: this.seed,
    };
  }
}

/** Multiply-adds of a Linear layer applied to `rows` vectors. */
export function linearMultiplyAdds(layer: Linear, rows: number): number {
  return rows * layer.inputDim * layer.units;
}

/** Multiply-adds of a full attention call: projections of Tq queries and Tk keys/values, scores, context, output. */
export function attentionMultiplyAdds(layer: MultiHeadAttention, queries: number, keys: number): number {
  const projections =
    linearMultiplyAdds(layer.query, queries) +
    linearMultiplyAdds(layer.key, keys) +
    linearMultiplyAdds(layer.value, keys) +
    linearMultiplyAdds(layer.outputProjection, queries);
  return projections + 2 * queries * keys * layer.dim;
}

/** Row-major token map [B, G*G, C] as a grid [B, G, G, C]. */
export function tokensToGrid(tokens: tf.Tensor3D, grid: number): tf.Tensor4D {
  const [batch, , channels] = tokens.shape;
  return tf.reshape(tokens, [batch, grid, grid, channels]);
}

/** Grid [B, G, G, C] as row-major tokens [B, G*G, C]. */
export function gridToTokens(map: tf.Tensor4D): tf.Tensor3D {
  const [batch, height, width, channels] = map.shape;
  return tf.reshape(map, [batch, height * width, channels]);
}
