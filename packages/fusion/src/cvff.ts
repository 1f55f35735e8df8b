import * as tf from '@tensorflow/tfjs-core';
import { LearnedPositions2D, Linear, type ForwardOptions } from '@s2cpnet/core';
import { FusionLayerBase, gridToTokens, linearMultiplyAdds, tokensToGrid } from './base';
import type { FusionLayerArgs } from './config';
import { BottleneckMergeBlock, ResidualMergeBlock, type MergeBlock } from './merge';
import { CrossViewUnit, type CrossViewVariant } from './unit';

/**
 * Shared skeleton of the paper and reference CVFF: project both views to d, add the learned 2-D positions (one
 * table, added to both), run U units with separate weights, and merge their outputs on the G x G grid:
 * `Fuse_0 = 0`, `Fuse_i = Merge_i(concat(View_i^0, View_i^1) + Fuse_{i-1})`, memory `M = Fuse_U` as N tokens of
 * width 2d.
 */
export abstract class CrossViewFusionBase extends FusionLayerBase {
  readonly usesMaskView = true;
  readonly variant: CrossViewVariant;
  readonly imageProjection: Linear;
  readonly maskProjection: Linear;
  readonly positions: LearnedPositions2D;
  readonly fusionUnits: CrossViewUnit[] = [];
  readonly mergeBlocks: MergeBlock[] = [];

  protected constructor(args: FusionLayerArgs, component: string, variant: CrossViewVariant, dropout: number) {
    super(args, component, { dropout, attention: true });
    this.variant = variant;
    this.imageProjection = this.child('imageProjection', new Linear({ inputDim: this.imageChannels, units: this.dim, seed: this.childSeed('imageProjection') }));
    this.maskProjection = this.child('maskProjection', new Linear({ inputDim: this.maskChannels, units: this.dim, seed: this.childSeed('maskProjection') }));
    this.positions = this.child('positions', new LearnedPositions2D({ grid: this.grid, dim: this.dim, seed: this.childSeed('positions') }));
    for (let i = 0; i < this.units; i++) {
      const unit = new CrossViewUnit({
        dim: this.dim,
        heads: this.heads,
        hiddenDim: this.ffnMultiplier * this.dim,
        dropout: this.dropoutRate,
        variant,
        seed: this.childSeed(`unit${i}`),
      });
      this.fusionUnits.push(this.child(`unit${i}`, unit));
      const mergeArgs = { channels: 2 * this.dim, seed: this.childSeed(`merge${i}`) };
      const block = variant === 'reference' ? new BottleneckMergeBlock(mergeArgs) : new ResidualMergeBlock(mergeArgs);
      this.mergeBlocks.push(this.child(`merge${i}`, block));
    }
  }

  get memoryWidth(): number {
    return 2 * this.dim;
  }

  override build(): void {
    this.buildChild(this.imageProjection, [null, this.imageChannels]);
    this.buildChild(this.maskProjection, [null, this.maskChannels]);
    this.buildChild(this.positions, [null]);
    for (const unit of this.fusionUnits) unit.ensureBuilt([null, this.dim]);
    for (const block of this.mergeBlocks) block.ensureBuilt([null, this.grid, this.grid, 2 * this.dim]);
    this.built = true;
  }

  /** Step 1: both views projected to d with the 2-D positions added, each [B,N,d]. */
  projectViews(imageTokens: tf.Tensor3D, maskTokens: tf.Tensor3D): [tf.Tensor3D, tf.Tensor3D] {
    this.ensureBuilt([null, this.tokens, this.imageChannels]);
    return tf.tidy(() => {
      const positions = this.positions.forward();
      return [
        tf.add(this.imageProjection.forward(imageTokens), positions) as tf.Tensor3D,
        tf.add(this.maskProjection.forward(maskTokens), positions) as tf.Tensor3D,
      ];
    });
  }

  fuse(imageTokens: tf.Tensor3D, maskTokens: tf.Tensor3D | null, options?: ForwardOptions): tf.Tensor3D {
    this.ensureBuilt([null, this.tokens, this.imageChannels]);
    this.checkInputs(imageTokens, maskTokens);
    return tf.tidy(() => {
      let [imageView, maskView] = this.projectViews(imageTokens, maskTokens!);
      let merged: tf.Tensor4D | null = null;
      for (let i = 0; i < this.units; i++) {
        [imageView, maskView] = this.fusionUnits[i]!.forward(imageView, maskView, options);
        const views = tokensToGrid(tf.concat([imageView, maskView], -1) as tf.Tensor3D, this.grid);
        merged = this.mergeBlocks[i]!.forward(merged ? (tf.add(views, merged) as tf.Tensor4D) : views, options);
      }
      return gridToTokens(merged!);
    });
  }

  multiplyAdds(): number {
    const n = this.tokens;
    let total = linearMultiplyAdds(this.imageProjection, n) + linearMultiplyAdds(this.maskProjection, n);
    for (let i = 0; i < this.units; i++) {
      total += this.fusionUnits[i]!.multiplyAdds(n) + this.mergeBlocks[i]!.multiplyAdds(this.grid, this.grid);
    }
    return total;
  }
}

/**
 * Cross-view feature fusion exactly as spec section 5 describes it (`type: 'cvff'`): U units of
 * {@link CrossViewUnit} with the sigmoid {@link CoarseGate}, merged by {@link ResidualMergeBlock}s; memory width 2d.
 * Defaults: 8 heads, 3 units, FFN 4d, dropout 0.1.
 *
 * Weight paths: `imageProjection/{kernel,bias}`, `maskProjection/{kernel,bias}`, `positions/{rows,columns}`,
 * `unit<i>/gate/projection/*`, `unit<i>/{image,mask}Attention/{query,key,value,output}/*`,
 * `unit<i>/{image,mask}{AttentionNorm,FeedForwardNorm}/{gamma,beta}`, `unit<i>/{image,mask}FeedForward/{inner,outer}/*`,
 * `merge<i>/conv/kernel`, `merge<i>/norm/{gamma,beta,moving_mean,moving_variance}`.
 *
 * @example
 * ```ts
 * import { CrossViewFusion } from '@s2cpnet/fusion';
 * const cvff = new CrossViewFusion({ imageChannels: 2048, maskChannels: 512, dim: 512, grid: 14, seed: 3 });
 * const memory = cvff.fuse(imageTokens, maskTokens); // [B,196,2048] + [B,196,512] -> [B,196,1024]
 * ```
 */
export class CrossViewFusion extends CrossViewFusionBase {
  static readonly className = 'CrossViewFusion';

  constructor(args: FusionLayerArgs) {
    super(args, 'CrossViewFusion', 'paper', 0.1);
  }
}

/**
 * Cross-view feature fusion as the authors' released code does it (`type: 'cvff-reference'`, spec section 9):
 * softmax gate over two logits with the fused map `g1*V1 + g2*V2 + V1 + V2` ({@link ReferenceCoarseGate}),
 * extra view-to-other-view attention in every unit, and {@link BottleneckMergeBlock} merges (1x1/3x3/1x1 with
 * batch norm, then LayerNorm). Dropout defaults to 0.5.
 *
 * @example
 * ```ts
 * import { ReferenceCrossViewFusion } from '@s2cpnet/fusion';
 * const cvff = new ReferenceCrossViewFusion({ imageChannels: 2048, maskChannels: 2048, dim: 512, grid: 14 });
 * ```
 */
export class ReferenceCrossViewFusion extends CrossViewFusionBase {
  static readonly className = 'ReferenceCrossViewFusion';

  constructor(args: FusionLayerArgs) {
    super(args, 'ReferenceCrossViewFusion', 'reference', 0.5);
  }
}
