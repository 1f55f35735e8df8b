import * as tf from '@tensorflow/tfjs-core';
import type * as tfl from '@tensorflow/tfjs-layers';
import { S2Layer, dropout, type ForwardOptions, type S2LayerArgs } from '../layer';
import { ShapeError } from '../errors';
import { Linear } from './linear';

export interface MultiHeadAttentionArgs extends S2LayerArgs {
  /** Width of queries and of the output. */
  dim: number;
  numHeads: number;
  /** Width of the key/value inputs; default `dim`. */
  keyValueDim?: number;
  /** Dropout on the attention weights; default 0.1. */
  dropout?: number;
}

/** Projected keys and values, split into heads: each [B, heads, Tk, headDim]. */
export type KeyValue = {
  keys: tf.Tensor4D;
  values: tf.Tensor4D;
};

export interface AttentionOptions extends ForwardOptions {
  /** Shape [B, Tk], with 1 where the key is real and 0 where it is padding. */
  keyPaddingMask?: tf.Tensor2D;
  /** Each query may attend only to keys at or before its own position (offset by `pastLength`). */
  causal?: boolean;
  /** Number of cached key positions that come before the first query (incremental decoding). */
  pastLength?: number;
  /** Return the attention weights [B, heads, Tq, Tk] as well. */
  returnAttention?: boolean;
}

export interface AttentionResult {
  output: tf.Tensor3D;
  /** [B, heads, Tq, Tk], only when `returnAttention` was set. */
  attention?: tf.Tensor4D;
}

const MASKED = -1e9;

/**
 * Multi-head scaled dot-product attention (Vaswani et al. 2017) with key-padding and causal masks, optional
 * returned attention weights, and an incremental key/value cache for step-wise decoding:
 * `projectKeyValue` once for a static memory, or `appendKeyValue` one position at a time for self-attention.
 * Scores are computed as `Q · transpose(K)` with an explicit transpose (wasm's transposed matMul is slow).
 */
export class MultiHeadAttention extends S2Layer {
  static readonly className = 'MultiHeadAttention';
  readonly dim: number;
  readonly numHeads: number;
  readonly keyValueDim: number;
  readonly headDim: number;
  readonly dropoutRate: number;
  readonly query: Linear;
  readonly key: Linear;
  readonly value: Linear;
  readonly outputProjection: Linear;

  constructor(args: MultiHeadAttentionArgs) {
    super(args);
    if (args.dim % args.numHeads !== 0) {
      throw new ShapeError('MultiHeadAttention', 'dim', `must be divisible by numHeads (${args.dim} / ${args.numHeads})`);
    }
    this.dim = args.dim;
    this.numHeads = args.numHeads;
    this.keyValueDim = args.keyValueDim ?? args.dim;
    this.headDim = args.dim / args.numHeads;
    this.dropoutRate = args.dropout ?? 0.1;
    this.query = this.child('query', new Linear({ inputDim: this.dim, units: this.dim, seed: this.childSeed('query') }));
    this.key = this.child('key', new Linear({ inputDim: this.keyValueDim, units: this.dim, seed: this.childSeed('key') }));
    this.value = this.child('value', new Linear({ inputDim: this.keyValueDim, units: this.dim, seed: this.childSeed('value') }));
    this.outputProjection = this.child('output', new Linear({ inputDim: this.dim, units: this.dim, seed: this.childSeed('output') }));
  }

  override build(): void {
    for (const layer of [this.query, this.key, this.value, this.outputProjection]) this.buildChild(layer, [null, layer.inputDim]);
    this.built = true;
  }

  /** [B, T, dim] -> [B, heads, T, headDim] */
  private splitHeads(x: tf.Tensor): tf.Tensor4D {
    const [b, t] = x.shape as [number, number, number];
    return tf.transpose(tf.reshape(x, [b, t, this.numHeads, this.headDim]), [0, 2, 1, 3]) as tf.Tensor4D;
  }

  /** Projects a key/value source once (e.g. the visual memory) for reuse across decoding steps. */
  projectKeyValue(key: tf.Tensor3D, value: tf.Tensor3D = key): KeyValue {
    this.ensureBuilt([null, this.dim]);
    return tf.tidy(() => ({
      keys: this.splitHeads(this.key.forward(key)),
      values: this.splitHeads(this.value.forward(value)),
    }));
  }

  /** Appends new positions to a self-attention cache; returns a new cache (the caller disposes the old one). */
  appendKeyValue(cache: KeyValue | null, key: tf.Tensor3D, value: tf.Tensor3D = key): KeyValue {
    return tf.tidy(() => {
      const fresh = this.projectKeyValue(key, value);
      if (!cache) return fresh;
      return {
        keys: tf.concat([cache.keys, fresh.keys], 2) as tf.Tensor4D,
        values: tf.concat([cache.values, fresh.values], 2) as tf.Tensor4D,
      };
    });
  }

  /** Attention of `query` [B, Tq, dim] over already projected keys/values. */
  attend(query: tf.Tensor3D, keyValue: KeyValue, options: AttentionOptions = {}): AttentionResult {
    this.ensureBuilt([null, this.dim]);
    const [b, tq, width] = query.shape;
    if (width !== this.dim) throw new ShapeError('MultiHeadAttention', 'query', `expected last axis ${this.dim}, found ${width}`);
    const tk = keyValue.keys.shape[2];
    let attentionOut: tf.Tensor4D | undefined;
    const output = tf.tidy(() => {
      const q = tf.mul(this.splitHeads(this.query.forward(query)), 1 / Math.sqrt(this.headDim));
      const kT = tf.transpose(keyValue.keys, [0, 1, 3, 2]);
      let scores = tf.matMul(q as tf.Tensor4D, kT as tf.Tensor4D); // [B, h, Tq, Tk]
      const bias = this.maskBias(b, tq, tk, options);
      if (bias) scores = tf.add(scores, bias);
      const weights = tf.softmax(scores, -1) as tf.Tensor4D;
      if (options.returnAttention) attentionOut = tf.keep(weights);
      const dropped = dropout(weights, this.dropoutRate, this.dropoutSeed(options, 'attention'));
      const context = tf.matMul(dropped as tf.Tensor4D, keyValue.values); // [B, h, Tq, headDim]
      const merged = tf.reshape(tf.transpose(context, [0, 2, 1, 3]), [b, tq, this.dim]);
      return this.outputProjection.forward(merged) as tf.Tensor3D;
    });
    return attentionOut ? { output, attention: attentionOut } : { output };
  }

  /** Full attention: projects `key`/`value` and attends. `query` [B,Tq,dim], `key`/`value` [B,Tk,keyValueDim]. */
  forward(query: tf.Tensor3D, key: tf.Tensor3D, value: tf.Tensor3D = key, options: AttentionOptions = {}): AttentionResult {
    if (key.shape[2] !== this.keyValueDim) {
      throw new ShapeError('MultiHeadAttention', 'key', `expected last axis ${this.keyValueDim}, found ${key.shape[2]}`);
    }
    if (key.shape[0] !== query.shape[0]) {
      throw new ShapeError('MultiHeadAttention', 'key', `batch ${key.shape[0]} does not match query batch ${query.shape[0]}`);
    }
    const kv = this.projectKeyValue(key, value);
    try {
      return this.attend(query, kv, options);
    } finally {
      tf.dispose([kv.keys, kv.values]);
    }
  }

  /** Additive mask [B or 1, 1, Tq, Tk] with -1e9 where attention is not allowed, or null. */
  private maskBias(batch: number, tq: number, tk: number, options: AttentionOptions): tf.Tensor | null {
    let bias: tf.Tensor | null = null;
    if (options.keyPaddingMask) {
      const m = options.keyPaddingMask;
      if (m.shape[0] !== batch || m.shape[1] !== tk) {
        throw new ShapeError('MultiHeadAttention', 'keyPaddingMask', `expected shape [${batch}, ${tk}], found [${m.shape.join(', ')}]`);
      }
      bias = tf.reshape(tf.mul(tf.sub(1, tf.cast(m, 'float32')), MASKED), [batch, 1, 1, tk]);
    }
    if (options.causal) {
      const past = options.pastLength ?? tk - tq;
      const values = new Float32Array(tq * tk);
      for (let i = 0; i < tq; i++) for (let j = 0; j < tk; j++) if (j > past + i) values[i * tk + j] = MASKED;
      const causal = tf.tensor4d(values, [1, 1, tq, tk]);
      bias = bias ? tf.add(bias, causal) : causal;
    }
    return bias;
  }

  override call(inputs: tf.Tensor | tf.Tensor[], kwargs: Record<string, unknown>): tf.Tensor {
    const list = Array.isArray(inputs) ? inputs : [inputs];
    const [q, k = q, v = k] = list as tf.Tensor3D[];
    return this.forward(q!, k!, v!, kwargs as AttentionOptions).output;
  }

  override computeOutputShape(inputShape: tfl.Shape | tfl.Shape[]): tfl.Shape {
    const first = (Array.isArray(inputShape[0]) ? inputShape[0] : inputShape) as tfl.Shape;
    return [...first.slice(0, -1), this.dim];
  }

  override getConfig(): tf.serialization.ConfigDict {
    return {
      ...super.getConfig(),
      dim: this.dim,
      numHeads: this.numHeads,
      keyValueDim: this.keyValueDim,
      dropout: this.dropoutRate,
      seed: this.seed,
    };
  }
}
