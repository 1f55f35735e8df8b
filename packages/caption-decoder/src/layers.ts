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

/** Sizes shared by every decoder layer. */
export interface DecoderLayerArgs extends S2LayerArgs {
  dim: number;
  numHeads: number;
  ffnDim: number;
  /** Dropout on attention weights and on each sub-layer's output before its residual sum. */
  dropout: number;
}

/**
 * The visual memory as one layer sees it: keys and values already projected by this layer's cross-attention
 * (once per image, never per caption or per beam), and how many query rows share each memory item.
 * Rows `i*rowsPerMemory .. (i+1)*rowsPerMemory-1` read memory item `i`.
 */
export interface MemoryView {
  keyValue: KeyValue;
  rowsPerMemory: number;
}

export interface DecoderLayerOptions extends ForwardOptions {
  /** Return the cross-attention weights [R, heads, T, N]. */
  returnAttention?: boolean;
}

export interface DecoderLayerOutput {
  /** [R, T, dim] */
  output: tf.Tensor3D;
  /** [R, heads, T, N] when requested. */
  crossAttention?: tf.Tensor4D;
}

/**
 * What the gated and plain layers share: masked self-attention over the words, cross-attention from words to
 * the memory, and a feed-forward block, with the dropout placement of Vaswani et al. (on each sub-layer output).
 *
 * One `run` serves teacher forcing and cached decoding alike: the caller passes the self-attention keys/values
 * covering every position up to the last query (`projectKeyValue(x)` for a full sequence, or the cache after
 * `appendKeyValue(cache, x)` for one new word) and `pastLength`, the number of cached positions before `x`.
 */
export abstract class DecoderLayerBase extends S2Layer {
  readonly dim: number;
  readonly numHeads: number;
  readonly ffnDim: number;
  readonly dropoutRate: number;
  readonly selfAttention: MultiHeadAttention;
  readonly crossAttention: MultiHeadAttention;
  readonly feedForward: FeedForward;

  constructor(args: DecoderLayerArgs) {
    super(args);
    this.dim = args.dim;
    this.numHeads = args.numHeads;
    this.ffnDim = args.ffnDim;
    this.dropoutRate = args.dropout;
    const attention = (name: string) =>
      new MultiHeadAttention({ dim: args.dim, numHeads: args.numHeads, dropout: args.dropout, seed: this.childSeed(name) });
    this.selfAttention = this.child('selfAttention', attention('selfAttention'));
    this.crossAttention = this.child('crossAttention', attention('crossAttention'));
    this.feedForward = this.child(
      'feedForward',
      new FeedForward({ dim: args.dim, hiddenDim: args.ffnDim, dropout: args.dropout, seed: this.childSeed('feedForward') }),
    );
  }

  protected buildShared(): void {
    this.selfAttention.ensureBuilt([null, this.dim]);
    this.crossAttention.ensureBuilt([null, this.dim]);
    this.feedForward.ensureBuilt([null, this.dim]);
  }

  /** Runs the layer on `x` [R, T, dim]. See the class comment for `selfKeyValue` and `pastLength`. */
  abstract run(x: tf.Tensor3D, selfKeyValue: KeyValue, pastLength: number, memory: MemoryView, options?: DecoderLayerOptions): DecoderLayerOutput;

  protected selfAttend(x: tf.Tensor3D, selfKeyValue: KeyValue, pastLength: number, options: DecoderLayerOptions): tf.Tensor3D {
    // A single new query may see every cached key, so the causal mask is only needed for T > 1.
    const causal = x.shape[1] > 1;
    return this.selfAttention.attend(x, selfKeyValue, {
      causal,
      pastLength,
      training: options.training,
      dropoutSeed: options.dropoutSeed,
    }).output;
  }

  /**
   * Cross-attention of `query` [R, T, dim] over memory items shared by `rowsPerMemory` consecutive rows.
   * Rows that share a memory item are folded into the query axis ([R/r, r*T, dim]) so that every query attends
   * to the one copy of that item's keys and values: nothing is tiled or re-projected per caption or per beam.
   * This is exact because cross-attention has no mask and treats each query independently.
   */
  protected crossAttend(query: tf.Tensor3D, memory: MemoryView, options: DecoderLayerOptions): DecoderLayerOutput {
    const [rows, length, width] = query.shape;
    const r = memory.rowsPerMemory;
    const memoryItems = memory.keyValue.keys.shape[0];
    if (rows !== memoryItems * r) {
      throw new ShapeError(this.getClassName(), 'memory', `${memoryItems} memory items x ${r} rows each do not match ${rows} query rows`);
    }
    return tf.tidy(() => {
      const folded = r === 1 ? query : (tf.reshape(query, [memoryItems, r * length, width]) as tf.Tensor3D);
      const result = this.crossAttention.attend(folded, memory.keyValue, {
        training: options.training,
        dropoutSeed: options.dropoutSeed,
        returnAttention: options.returnAttention,
      });
      const output = r === 1 ? result.output : (tf.reshape(result.output, [rows, length, width]) as tf.Tensor3D);
      if (!result.attention) return { output };
      if (r === 1) return { output, crossAttention: result.attention };
      const tokens = result.attention.shape[3];
      const unfolded = tf.reshape(
        tf.transpose(tf.reshape(result.attention, [memoryItems, this.numHeads, r, length, tokens]), [0, 2, 1, 3, 4]),
        [rows, this.numHeads, length, tokens],
      ) as tf.Tensor4D;
      // attend() keeps its attention tensor out of every tidy scope; the unfolded copy replaces it.
      result.attention.dispose();
      return { output, crossAttention: unfolded };
    });
  }

  protected residualDropout(x: tf.Tensor, options: DecoderLayerOptions, name: string): tf.Tensor {
    return dropout(x, this.dropoutRate, this.dropoutSeed(options, name));
  }

  override call(inputs: tf.Tensor | tf.Tensor[], kwargs: Record<string, unknown>): tf.Tensor {
    const [x, memory] = (Array.isArray(inputs) ? inputs : [inputs]) as tf.Tensor3D[];
    if (!x || !memory) throw new ShapeError(this.getClassName(), 'inputs', 'expected [words [B,T,dim], memory [B,N,dim]]');
    const options = kwargs as DecoderLayerOptions;
    return tf.tidy(() => {
      const selfKeyValue = this.selfAttention.projectKeyValue(x);
      const keyValue = this.crossAttention.projectKeyValue(memory);
      return this.run(x, selfKeyValue, 0, { keyValue, rowsPerMemory: 1 }, { ...options, returnAttention: false }).output;
    });
  }

  override computeOutputShape(inputShape: tfl.Shape | tfl.Shape[]): tfl.Shape {
    return (Array.isArray(inputShape[0]) ? inputShape[0] : inputShape) as tfl.Shape;
  }

  override getConfig(): tf.serialization.ConfigDict {
    return {
      ...super.getConfig(),
      dim: this.dim,
      numHeads: this.numHeads,
      ffnDim: this.ffnDim,
      dropout: this.dropoutRate,
      seed: this.seed,
    };
  }
}

/** The gate of the gated layer: the paper's Eq. 6 or the authors' released code. */
export type GateVariant = 'paper' | 'reference';

export interface GatedDecoderLayerArgs extends DecoderLayerArgs {
  /** Default `paper`. */
  gate?: GateVariant;
}

/**
 * The paper's gated decoder layer (Eq. 6), with `w` the layer input:
 * ```
 * T   = LN_text(w + SelfMHA(w))                       masked self-attention: text feature
 * Vv  = MHA(T, M, M)                                   visual feature
 * F   = LN_a(sigmoid(Vv)*Vv) + LN_b(sigmoid(T)*T) + w  (gate 'paper')
 * F   = LN_a((1+sigmoid(Vv))*Vv) + LN_b((1+sigmoid(T))*T) + T   (gate 'reference', the released code)
 * out = LN_out(F + FFN(F))
 * ```
 * Dropout (training only) is applied to SelfMHA(w), to Vv and to FFN(F).
 */
export class GatedDecoderLayer extends DecoderLayerBase {
  static readonly className = 'GatedDecoderLayer';
  readonly gateVariant: GateVariant;
  readonly textNorm: LayerNorm;
  readonly visualGateNorm: LayerNorm;
  readonly textGateNorm: LayerNorm;
  readonly outputNorm: LayerNorm;

  constructor(args: GatedDecoderLayerArgs) {
    super(args);
    this.gateVariant = args.gate ?? 'paper';
    if (this.gateVariant !== 'paper' && this.gateVariant !== 'reference') {
      throw new ShapeError('GatedDecoderLayer', 'gate', `expected 'paper' or 'reference', found ${JSON.stringify(args.gate)}`);
    }
    const norm = (name: string) => this.child(name, new LayerNorm({ dim: args.dim, seed: this.childSeed(name) }));
    this.textNorm = norm('textNorm');
    this.visualGateNorm = norm('visualGateNorm');
    this.textGateNorm = norm('textGateNorm');
    this.outputNorm = norm('outputNorm');
  }

  override build(): void {
    this.buildShared();
    for (const n of [this.textNorm, this.visualGateNorm, this.textGateNorm, this.outputNorm]) n.ensureBuilt([null, this.dim]);
    this.built = true;
  }

  /**
   * The gate alone: `text` T, `visual` Vv and `layerInput` w, each [..., dim] -> F [..., dim].
   * Public so that tests and analyses can probe it without the attention around it.
   */
  gate(text: tf.Tensor, visual: tf.Tensor, layerInput: tf.Tensor): tf.Tensor {
    this.ensureBuilt([null, this.dim]);
    return tf.tidy(() => {
      const selfGated = (x: tf.Tensor) =>
        this.gateVariant === 'paper' ? tf.mul(tf.sigmoid(x), x) : tf.mul(tf.add(1, tf.sigmoid(x)), x);
      const fused = tf.add(this.visualGateNorm.forward(selfGated(visual)), this.textGateNorm.forward(selfGated(text)));
      return tf.add(fused, this.gateVariant === 'paper' ? layerInput : text);
    });
  }

  run(x: tf.Tensor3D, selfKeyValue: KeyValue, pastLength: number, memory: MemoryView, options: DecoderLayerOptions = {}): DecoderLayerOutput {
    this.ensureBuilt([null, this.dim]);
    let crossAttention = undefined as tf.Tensor4D | undefined;
    const output = tf.tidy(() => {
      const selfOut = this.selfAttend(x, selfKeyValue, pastLength, options);
      const text = this.textNorm.forward(tf.add(x, this.residualDropout(selfOut, options, 'selfOutput')));
      const cross = this.crossAttend(text as tf.Tensor3D, memory, options);
      if (cross.crossAttention) crossAttention = tf.keep(cross.crossAttention);
      const visual = this.residualDropout(cross.output, options, 'visualOutput');
      const fused = this.gate(text, visual, x);
      const ffn = this.residualDropout(this.feedForward.forward(fused, options), options, 'feedForwardOutput');
      return this.outputNorm.forward(tf.add(fused, ffn)) as tf.Tensor3D;
    });
    return crossAttention ? { output, crossAttention } : { output };
  }

  override getConfig(): tf.serialization.ConfigDict {
    return { ...super.getConfig(), gate: this.gateVariant };
  }
}

/**
 * A standard post-norm transformer decoder layer (Baseline1, Vaswani et al. 2017):
 * `x1 = LN(w + SelfMHA(w))`, `x2 = LN(x1 + MHA(x1, M, M))`, `out = LN(x2 + FFN(x2))`.
 */
export class PlainDecoderLayer extends DecoderLayerBase {
  static readonly className = 'PlainDecoderLayer';
  readonly selfNorm: LayerNorm;
  readonly crossNorm: LayerNorm;
  readonly outputNorm: LayerNorm;

  constructor(args: DecoderLayerArgs) {
    super(args);
    const norm = (name: string) => this.child(name, new LayerNorm({ dim: args.dim, seed: this.childSeed(name) }));
    this.selfNorm = norm('selfNorm');
    this.crossNorm = norm('crossNorm');
    this.outputNorm = norm('outputNorm');
  }

  override build(): void {
    this.buildShared();
    for (const n of [this.selfNorm, this.crossNorm, this.outputNorm]) n.ensureBuilt([null, this.dim]);
    this.built = true;
  }

  run(x: tf.Tensor3D, selfKeyValue: KeyValue, pastLength: number, memory: MemoryView, options: DecoderLayerOptions = {}): DecoderLayerOutput {
    this.ensureBuilt([null, this.dim]);
    let crossAttention = undefined as tf.Tensor4D | undefined;
    const output = tf.tidy(() => {
      const selfOut = this.selfAttend(x, selfKeyValue, pastLength, options);
      const afterSelf = this.selfNorm.forward(tf.add(x, this.residualDropout(selfOut, options, 'selfOutput')));
      const cross = this.crossAttend(afterSelf as tf.Tensor3D, memory, options);
      if (cross.crossAttention) crossAttention = tf.keep(cross.crossAttention);
      const afterCross = this.crossNorm.forward(tf.add(afterSelf, this.residualDropout(cross.output, options, 'crossOutput')));
      const ffn = this.residualDropout(this.feedForward.forward(afterCross, options), options, 'feedForwardOutput');
      return this.outputNorm.forward(tf.add(afterCross, ffn)) as tf.Tensor3D;
    });
    return crossAttention ? { output, crossAttention } : { output };
  }
}
