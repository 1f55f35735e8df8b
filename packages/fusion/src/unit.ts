import * as tf from '@tensorflow/tfjs-core';
import type * as tfl from '@tensorflow/tfjs-layers';
import { FeedForward, LayerNorm, MultiHeadAttention, S2Layer, dropout, type ForwardOptions, type S2LayerArgs } from '@s2cpnet/core';
import { attentionMultiplyAdds, linearMultiplyAdds } from './base';
import { CoarseGate, ReferenceCoarseGate, type FusionGate } from './gates';

/** `'paper'`: spec section 5. `'reference'`: the authors' released code (spec section 9). */
export type CrossViewVariant = 'paper' | 'reference';

export interface CrossViewUnitArgs extends S2LayerArgs {
  dim: number;
  heads: number;
  /** Feed-forward hidden width. */
  hiddenDim: number;
  dropout: number;
  /** Default `'paper'`. */
  variant?: CrossViewVariant;
}

/** The blocks that update one view. */
export interface ViewBlocks {
  attention: MultiHeadAttention;
  /** Reference variant only: attention to the other view. */
  crossAttention: MultiHeadAttention | null;
  attentionNorm: LayerNorm;
  feedForward: FeedForward;
  feedForwardNorm: LayerNorm;
}

/**
 * One CVFF unit (spec section 5, step 2): a coarse gate makes the fused map F, then each view gets its own
 * post-norm cross attention with F as keys/values and its own feed-forward block:
 * `V1' = LN(V1 + MHA(V1, F, F))`, `V1' = LN(V1' + FFN(V1'))`, the same for V2 with separate weights.
 *
 * The `'reference'` variant uses {@link ReferenceCoarseGate} and adds, per view, an attention to the other view
 * whose output joins the same residual sum: `V1' = LN(V1 + MHA(V1, F, F) + MHA'(V1, V2, V2))` (our reading of
 * "each unit also adds view-to-other-view cross attention").
 *
 * Dropout (training only) is applied to each sub-block's output before its residual sum, as in a standard
 * transformer layer; core's attention and feed-forward blocks also drop attention weights and hidden units.
 *
 * Weight paths: `gate/*`, `{image,mask}Attention/*`, `{image,mask}AttentionNorm/*`, `{image,mask}FeedForward/*`,
 * `{image,mask}FeedForwardNorm/*`, and for the reference variant `{image,mask}CrossAttention/*`.
 */
export class CrossViewUnit extends S2Layer {
  static readonly className = 'CrossViewUnit';
  readonly dim: number;
  readonly heads: number;
  readonly hiddenDim: number;
  readonly dropoutRate: number;
  readonly variant: CrossViewVariant;
  readonly gate: FusionGate;
  readonly image: ViewBlocks;
  readonly mask: ViewBlocks;

  constructor(args: CrossViewUnitArgs) {
    super(args);
    this.dim = args.dim;
    this.heads = args.heads;
    this.hiddenDim = args.hiddenDim;
    this.dropoutRate = args.dropout;
    this.variant = args.variant ?? 'paper';
    const gateArgs = { dim: this.dim, seed: this.childSeed('gate') };
    this.gate = this.child('gate', this.variant === 'reference' ? new ReferenceCoarseGate(gateArgs) : new CoarseGate(gateArgs));
    this.image = this.viewBlocks('image');
    this.mask = this.viewBlocks('mask');
  }

  private viewBlocks(view: 'image' | 'mask'): ViewBlocks {
    const { dim, heads, hiddenDim } = this;
    const rate = this.dropoutRate;
    const attention = (name: string) =>
      this.child(name, new MultiHeadAttention({ dim, numHeads: heads, dropout: rate, seed: this.childSeed(name) }));
    const norm = (name: string) => this.child(name, new LayerNorm({ dim, seed: this.childSeed(name) }));
    return {
      attention: attention(`${view}Attention`),
      crossAttention: this.variant === 'reference' ? attention(`${view}CrossAttention`) : null,
      attentionNorm: norm(`${view}AttentionNorm`),
      feedForward: this.child(
        `${view}FeedForward`,
        new FeedForward({ dim, hiddenDim, dropout: rate, seed: this.childSeed(`${view}FeedForward`) }),
      ),
      feedForwardNorm: norm(`${view}FeedForwardNorm`),
    };
  }

  override build(): void {
    for (const layer of this.children().values()) {
      if (layer instanceof S2Layer) layer.ensureBuilt([null, this.dim]);
    }
    this.built = true;
  }

  /** One view's update: attention(s), then feed-forward, each with residual + LayerNorm. */
  private updateView(
    view: tf.Tensor3D,
    other: tf.Tensor3D,
    fused: tf.Tensor3D,
    blocks: ViewBlocks,
    name: string,
    options: ForwardOptions | undefined,
  ): tf.Tensor3D {
    return tf.tidy(() => {
      const attentionOptions = { training: options?.training, dropoutSeed: options?.dropoutSeed };
      const terms: tf.Tensor[] = [
        view,
        dropout(blocks.attention.forward(view, fused, fused, attentionOptions).output, this.dropoutRate, this.dropoutSeed(options, `${name}Attention`)),
      ];
      if (blocks.crossAttention) {
        const toOther = blocks.crossAttention.forward(view, other, other, attentionOptions).output;
        terms.push(dropout(toOther, this.dropoutRate, this.dropoutSeed(options, `${name}CrossAttention`)));
      }
      const afterAttention = blocks.attentionNorm.forward(tf.addN(terms));
      const fed = dropout(blocks.feedForward.forward(afterAttention, options), this.dropoutRate, this.dropoutSeed(options, `${name}FeedForward`));
      return blocks.feedForwardNorm.forward(tf.add(afterAttention, fed)) as tf.Tensor3D;
    });
  }

  /** (V1, V2) -> (View_i^0, View_i^1), each [B,N,d]. */
  forward(imageView: tf.Tensor3D, maskView: tf.Tensor3D, options?: ForwardOptions): [tf.Tensor3D, tf.Tensor3D] {
    this.ensureBuilt([null, this.dim]);
    return tf.tidy(() => {
      const fused = this.gate.forward(imageView, maskView);
      return [
        this.updateView(imageView, maskView, fused, this.image, 'image', options),
        this.updateView(maskView, imageView, fused, this.mask, 'mask', options),
      ];
    });
  }

  override call(inputs: tf.Tensor | tf.Tensor[], kwargs: Record<string, unknown>): tf.Tensor[] {
    const [image, mask] = inputs as tf.Tensor3D[];
    return this.forward(image!, mask!, kwargs as ForwardOptions);
  }

  override computeOutputShape(inputShape: tfl.Shape | tfl.Shape[]): tfl.Shape[] {
    const first = (Array.isArray(inputShape[0]) ? inputShape[0] : inputShape) as tfl.Shape;
    return [first, first];
  }

  /** Multiply-adds of one unit on `tokens` tokens (one sample). */
  multiplyAdds(tokens: number): number {
    const perView = (blocks: ViewBlocks) =>
      attentionMultiplyAdds(blocks.attention, tokens, tokens) +
      (blocks.crossAttention ? attentionMultiplyAdds(blocks.crossAttention, tokens, tokens) : 0) +
      linearMultiplyAdds(blocks.feedForward.inner, tokens) +
      linearMultiplyAdds(blocks.feedForward.outer, tokens);
    return this.gate.multiplyAdds(tokens) + perView(this.image) + perView(this.mask);
  }

  override getConfig(): tf.serialization.ConfigDict {
    return {
      ...super.getConfig(),
      dim: this.dim,
      heads: this.heads,
      hiddenDim: this.hiddenDim,
      dropout: this.dropoutRate,
      variant: this.variant,
      seed: this.seed,
    };
  }
}
