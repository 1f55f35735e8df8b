import * as tf from '@tensorflow/tfjs-core';
import type * as tfl from '@tensorflow/tfjs-layers';
import {
  FeedForward,
  LayerNorm,
  MultiHeadAttention,
  S2Layer,
  ShapeError,
  dropout,
  type ForwardOptions,
  type KeyValue,
  type S2LayerArgs,
} from '@s2cpnet/core';

export interface QueryDecoderLayerArgs extends S2LayerArgs {
  dim: number;
  numHeads: number;
  ffnDim: number;
  /** Dropout on attention weights and on each sub-layer output before its residual sum. */
  dropout: number;
}

export interface QueryDecoderRunOptions extends ForwardOptions {
  /** Mask self-attention so that query i sees positions 0..pastLength+i only (sequence decoding). */
  causal?: boolean;
}

/**
 * A post-norm transformer decoder layer (Vaswani et al. 2017) over a set or a sequence of queries:
 * `x1 = LN(x + SelfMHA(x))`, `x2 = LN(x1 + MHA(x1, M, M))`, `out = LN(x2 + FFN(x2))`.
 *
 * `run` takes the self-attention keys/values already projected (`selfAttention.projectKeyValue(x)` for a whole
 * sequence, or a cache after `appendKeyValue(cache, x)` for one new position) and the memory's keys/values
 * projected by `crossAttention.projectKeyValue(memory)`, so that step-wise decoding pays one position per step.
 */
export class QueryDecoderLayer extends S2Layer {
  static readonly className = 'QueryDecoderLayer';
  readonly dim: number;
  readonly numHeads: number;
  readonly ffnDim: number;
  readonly dropoutRate: number;
  readonly selfAttention: MultiHeadAttention;
  readonly selfNorm: LayerNorm;
  readonly crossAttention: MultiHeadAttention;
  readonly crossNorm: LayerNorm;
  readonly feedForward: FeedForward;
  readonly outputNorm: LayerNorm;

  constructor(args: QueryDecoderLayerArgs) {
    super(args);
    this.dim = args.dim;
    this.numHeads = args.numHeads;
    this.ffnDim = args.ffnDim;
    this.dropoutRate = args.dropout;
    const attention = (name: string) =>
      this.child(name, new MultiHeadAttention({ dim: args.dim, numHeads: args.numHeads, dropout: args.dropout, seed: this.childSeed(name) }));
    const norm = (name: string) => this.child(name, new LayerNorm({ dim: args.dim, seed: this.childSeed(name) }));
    this.selfAttention = attention('selfAttention');
    this.selfNorm = norm('selfNorm');
    this.crossAttention = attention('crossAttention');
    this.crossNorm = norm('crossNorm');
    this.feedForward = this.child(
      'feedForward',
      new FeedForward({ dim: args.dim, hiddenDim: args.ffnDim, dropout: args.dropout, seed: this.childSeed('feedForward') }),
    );
    this.outputNorm = norm('outputNorm');
  }

  override build(): void {
    for (const child of [this.selfAttention, this.selfNorm, this.crossAttention, this.crossNorm, this.feedForward, this.outputNorm]) {
      child.ensureBuilt([null, this.dim]);
    }
    this.built = true;
  }

  /** `x` [B,T,dim] -> [B,T,dim]; see the class comment for `selfKeyValue`, `pastLength` and `memory`. */
  run(x: tf.Tensor3D, selfKeyValue: KeyValue, pastLength: number, memory: KeyValue, options: QueryDecoderRunOptions = {}): tf.Tensor3D {
    return tf.tidy(() => this.memoryBlock(this.selfBlock(x, selfKeyValue, pastLength, options), memory, options));
  }

  /** First sub-layer: `LN(x + SelfMHA(x))`. */
  selfBlock(x: tf.Tensor3D, selfKeyValue: KeyValue, pastLength: number, options: QueryDecoderRunOptions = {}): tf.Tensor3D {
    this.ensureBuilt([null, this.dim]);
    return tf.tidy(() => {
      const causal = options.causal === true && x.shape[1] > 1;
      const forward = { training: options.training, dropoutSeed: options.dropoutSeed };
      const selfOut = this.selfAttention.attend(x, selfKeyValue, { ...forward, causal, pastLength }).output;
      return this.selfNorm.forward(tf.add(x, this.residualDropout(selfOut, options, 'selfOutput'))) as tf.Tensor3D;
    });
  }

  /** Second and third sub-layers: `x2 = LN(x + MHA(x, M, M))`, `LN(x2 + FFN(x2))`. */
  memoryBlock(x: tf.Tensor3D, memory: KeyValue, options: ForwardOptions = {}): tf.Tensor3D {
    this.ensureBuilt([null, this.dim]);
    if (memory.keys.shape[0] !== x.shape[0]) {
      throw new ShapeError('QueryDecoderLayer', 'memory', `batch ${memory.keys.shape[0]} does not match query batch ${x.shape[0]}`);
    }
    return tf.tidy(() => {
      const forward = { training: options.training, dropoutSeed: options.dropoutSeed };
      const crossOut = this.crossAttention.attend(x, memory, forward).output;
      const afterCross = this.crossNorm.forward(tf.add(x, this.residualDropout(crossOut, options, 'crossOutput')));
      const ffn = this.residualDropout(this.feedForward.forward(afterCross, forward), options, 'feedForwardOutput');
      return this.outputNorm.forward(tf.add(afterCross, ffn)) as tf.Tensor3D;
    });
  }

  private residualDropout(x: tf.Tensor, options: ForwardOptions, name: string): tf.Tensor {
    return dropout(x, this.dropoutRate, this.dropoutSeed(options, name));
  }

  override call(inputs: tf.Tensor | tf.Tensor[], kwargs: Record<string, unknown>): tf.Tensor {
    const [x, memory] = (Array.isArray(inputs) ? inputs : [inputs]) as tf.Tensor3D[];
    if (!x || !memory) throw new ShapeError('QueryDecoderLayer', 'inputs', 'expected [queries [B,T,dim], memory [B,N,dim]]');
    const options = kwargs as QueryDecoderRunOptions;
    return tf.tidy(() =>
      this.run(x, this.selfAttention.projectKeyValue(x), 0, this.crossAttention.projectKeyValue(memory), options),
    );
  }

  override computeOutputShape(inputShape: tfl.Shape | tfl.Shape[]): tfl.Shape {
    return (Array.isArray(inputShape[0]) ? inputShape[0] : inputShape) as tfl.Shape;
  }

  override getConfig(): tf.serialization.ConfigDict {
    return { ...super.getConfig(), dim: this.dim, numHeads: this.numHeads, ffnDim: this.ffnDim, dropout: this.dropoutRate, seed: this.seed };
  }
}
