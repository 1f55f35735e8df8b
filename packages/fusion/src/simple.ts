import * as tf from '@tensorflow/tfjs-core';
import { LearnedPositions2D, Linear, dropout, type ForwardOptions } from '@s2cpnet/core';
import { FusionLayerBase, linearMultiplyAdds } from './base';
import type { FusionLayerArgs } from './config';

/**
 * Common parts of the one-step strategies: the image projection C1 -> d and the learned 2-D positions, and
 * dropout on the returned memory in training mode (the usual dropout after adding positions to embeddings).
 */
abstract class ProjectionFusionBase extends FusionLayerBase {
  readonly imageProjection: Linear;
  readonly positions: LearnedPositions2D;

  protected constructor(args: FusionLayerArgs, component: string) {
    super(args, component, { dropout: 0.1, attention: false });
    this.imageProjection = this.child('imageProjection', new Linear({ inputDim: this.imageChannels, units: this.dim, seed: this.childSeed('imageProjection') }));
    this.positions = this.child('positions', new LearnedPositions2D({ grid: this.grid, dim: this.dim, seed: this.childSeed('positions') }));
  }

  override build(): void {
    this.buildChild(this.imageProjection, [null, this.imageChannels]);
    this.buildChild(this.positions, [null]);
    this.built = true;
  }

  fuse(imageTokens: tf.Tensor3D, maskTokens: tf.Tensor3D | null, options?: ForwardOptions): tf.Tensor3D {
    this.ensureBuilt([null, this.tokens, this.imageChannels]);
    this.checkInputs(imageTokens, maskTokens);
    return tf.tidy(() => {
      const memory = this.combine(imageTokens, maskTokens, this.positions.forward());
      return dropout(memory, this.dropoutRate, this.dropoutSeed(options, 'memory')) as tf.Tensor3D;
    });
  }

  /** The memory before dropout. */
  protected abstract combine(imageTokens: tf.Tensor3D, maskTokens: tf.Tensor3D | null, positions: tf.Tensor2D): tf.Tensor3D;
}

/**
 * Model2-A (`type: 'add'`): `M = Linear(C1 -> d)(V1) + Linear(C2 -> d)(V2) + P`, memory width d.
 *
 * Weight paths: `imageProjection/*`, `maskProjection/*`, `positions/{rows,columns}`.
 *
 * @example
 * ```ts
 * const fusion = new AddFusion({ imageChannels: 2048, maskChannels: 2048, dim: 512, grid: 14 });
 * const memory = fusion.fuse(imageTokens, maskTokens); // [B,196,512]
 * ```
 */
export class AddFusion extends ProjectionFusionBase {
  static readonly className = 'AddFusion';
  readonly usesMaskView = true;
  readonly maskProjection: Linear;

  constructor(args: FusionLayerArgs) {
    super(args, 'AddFusion');
    this.maskProjection = this.child('maskProjection', new Linear({ inputDim: this.maskChannels, units: this.dim, seed: this.childSeed('maskProjection') }));
  }

  get memoryWidth(): number {
    return this.dim;
  }

  override build(): void {
    super.build();
    this.buildChild(this.maskProjection, [null, this.maskChannels]);
  }

  protected combine(imageTokens: tf.Tensor3D, maskTokens: tf.Tensor3D | null, positions: tf.Tensor2D): tf.Tensor3D {
    return tf.add(tf.add(this.imageProjection.forward(imageTokens), this.maskProjection.forward(maskTokens!)), positions) as tf.Tensor3D;
  }

  multiplyAdds(): number {
    return linearMultiplyAdds(this.imageProjection, this.tokens) + linearMultiplyAdds(this.maskProjection, this.tokens);
  }
}

/**
 * Model2-B (`type: 'concat'`): `M = concat(Linear(C1 -> d)(V1) + P, Linear(C2 -> d)(V2) + P)`, memory width 2d.
 * The same position table is added to both views, as in CVFF.
 *
 * Weight paths: `imageProjection/*`, `maskProjection/*`, `positions/{rows,columns}`.
 *
 * @example
 * ```ts
 * const fusion = new ConcatFusion({ imageChannels: 2048, maskChannels: 2048, dim: 512, grid: 14 });
 * const memory = fusion.fuse(imageTokens, maskTokens); // [B,196,1024]
 * ```
 */
export class ConcatFusion extends ProjectionFusionBase {
  static readonly className = 'ConcatFusion';
  readonly usesMaskView = true;
  readonly maskProjection: Linear;

  constructor(args: FusionLayerArgs) {
    super(args, 'ConcatFusion');
    this.maskProjection = this.child('maskProjection', new Linear({ inputDim: this.maskChannels, units: this.dim, seed: this.childSeed('maskProjection') }));
  }

  get memoryWidth(): number {
    return 2 * this.dim;
  }

  override build(): void {
    super.build();
    this.buildChild(this.maskProjection, [null, this.maskChannels]);
  }

  protected combine(imageTokens: tf.Tensor3D, maskTokens: tf.Tensor3D | null, positions: tf.Tensor2D): tf.Tensor3D {
    const image = tf.add(this.imageProjection.forward(imageTokens), positions);
    const mask = tf.add(this.maskProjection.forward(maskTokens!), positions);
    return tf.concat([image, mask], -1) as tf.Tensor3D;
  }

  multiplyAdds(): number {
    return linearMultiplyAdds(this.imageProjection, this.tokens) + linearMultiplyAdds(this.maskProjection, this.tokens);
  }
}

/**
 * Baseline / Model1 (`type: 'single-view'`): image tokens only, `M = Linear(C1 -> d)(V1) + P`, memory width d.
 * `maskTokens` may be null (and is ignored when given); `maskChannels` is ignored.
 *
 * Weight paths: `imageProjection/*`, `positions/{rows,columns}`.
 *
 * @example
 * ```ts
 * const fusion = new SingleViewFusion({ imageChannels: 2048, maskChannels: 1, dim: 512, grid: 14 });
 * const memory = fusion.fuse(imageTokens, null); // [B,196,512]
 * ```
 */
export class SingleViewFusion extends ProjectionFusionBase {
  static readonly className = 'SingleViewFusion';
  readonly usesMaskView = false;

  constructor(args: FusionLayerArgs) {
    super(args, 'SingleViewFusion');
  }

  get memoryWidth(): number {
    return this.dim;
  }

  protected combine(imageTokens: tf.Tensor3D, _maskTokens: tf.Tensor3D | null, positions: tf.Tensor2D): tf.Tensor3D {
    return tf.add(this.imageProjection.forward(imageTokens), positions) as tf.Tensor3D;
  }

  multiplyAdds(): number {
    return linearMultiplyAdds(this.imageProjection, this.tokens);
  }
}
