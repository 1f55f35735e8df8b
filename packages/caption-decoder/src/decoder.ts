import * as tf from '@tensorflow/tfjs-core';
import type * as tfl from '@tensorflow/tfjs-layers';
import {
  Embedding,
  LearnedPositions1D,
  Linear,
  S2Layer,
  ShapeError,
  assertDtype,
  assertRank,
  dropout,
  sinusoidalTable,
  embedTokens,
  type CaptionDecoder,
  type CaptionDecoderOutput,
  type DecodeStepOutput,
  type ForwardOptions,
  type KeyValue,
  type S2LayerArgs,
} from '@s2cpnet/core';
import {
  captionDecoderLayerTypes,
  resolveCaptionDecoderSizes,
  type CaptionDecoderLayerType,
  type CaptionDecoderSizes,
} from './config';
import { GatedDecoderLayer, PlainDecoderLayer, type DecoderLayerBase } from './layers';

export interface TransformerCaptionDecoderArgs extends S2LayerArgs, CaptionDecoderSizes {
  /** Default `gated` (the paper's Eq. 6). */
  layerType?: CaptionDecoderLayerType;
}

/** Options of a teacher-forced pass. */
export interface CaptionForwardOptions extends ForwardOptions {
  /** Return every layer's cross-attention weights [B*c, heads, T, N]; the caller disposes them. */
  returnAttention?: boolean;
  /**
   * Captions per image `c` (default 1): `memory` is [B, N, D] and `tokens` [B*c, T], rows `i*c .. i*c+c-1` being
   * the captions of image `i`. The memory is projected once per image and its keys/values are shared by the `c`
   * captions (see `MemoryView`), so training on all five captions does not re-encode or tile the memory.
   */
  captionsPerImage?: number;
}

/**
 * The cached state of step-wise decoding. Treat it as opaque: `step` and `reorderState` take ownership of the
 * state they are given and return a new one (the old one must not be used or disposed afterwards);
 * `disposeState` frees the last one.
 */
export interface CaptionDecoderState {
  /** Per layer, the memory's cross-attention keys/values: one entry per memory item ([memoryItems, heads, N, headDim]). */
  readonly memoryKeyValues: readonly KeyValue[];
  /** Number of memory items (images, or rows after a reorder that mixes images). */
  readonly memoryItems: number;
  /** Number of hypothesis rows; a multiple of `memoryItems`. */
  readonly rows: number;
  /** Per layer, the self-attention keys/values of every word fed so far ([rows, heads, length, headDim]), or null before the first step. */
  readonly selfKeyValues: readonly (KeyValue | null)[];
  /** Number of words fed so far (the position of the next one). */
  readonly length: number;
}

/**
 * The transformer caption decoder of S²CPNet (spec section 6), a stack of `numLayers` gated (Eq. 6), plain
 * (Baseline1) or reference-gated layers over a projected visual memory:
 * ```
 * M   = Linear(memoryWidth -> dim)(memory)
 * x_0 = sqrt(dim) * Embedding(tokens) + sinusoidal(pos) + learned(pos)      (dropout in training)
 * x_l = Layer_l(x_{l-1}, M)
 * logits = Linear(dim -> vocabSize)(x_L)
 * ```
 * Teacher forcing (`forward`) runs all positions at once with a causal mask; step-wise decoding
 * (`initState`/`step`) projects the memory's keys and values once and caches the words' keys and values, so each
 * new word costs one position.
 */
export class TransformerCaptionDecoder extends S2Layer implements CaptionDecoder<CaptionDecoderState> {
  static readonly className = 'TransformerCaptionDecoder';
  readonly layerType: CaptionDecoderLayerType;
  readonly vocabSize: number;
  readonly memoryWidth: number;
  readonly dim: number;
  readonly numLayers: number;
  readonly numHeads: number;
  readonly ffnDim: number;
  readonly dropoutRate: number;
  readonly maxLength: number;
  readonly embedding: Embedding;
  readonly learnedPositions: LearnedPositions1D;
  readonly memoryProjection: Linear;
  readonly layers: readonly DecoderLayerBase[];
  readonly head: Linear;
  private readonly sinusoid: Float32Array;

  constructor(args: TransformerCaptionDecoderArgs) {
    super(args);
    const layerType = args.layerType ?? 'gated';
    if (!captionDecoderLayerTypes.includes(layerType)) {
      throw new ShapeError('TransformerCaptionDecoder', 'layerType', `expected one of ${captionDecoderLayerTypes.join(', ')}, found ${JSON.stringify(layerType)}`);
    }
    const sizes = resolveCaptionDecoderSizes(args, layerType);
    this.layerType = layerType;
    this.vocabSize = sizes.vocabSize;
    this.memoryWidth = sizes.memoryWidth;
    this.dim = sizes.dim;
    this.numLayers = sizes.numLayers;
    this.numHeads = sizes.numHeads;
    this.ffnDim = sizes.ffnDim;
    this.dropoutRate = sizes.dropout;
    this.maxLength = sizes.maxLength;
    this.embedding = this.child('embedding', new Embedding({ vocabSize: this.vocabSize, dim: this.dim, seed: this.childSeed('embedding') }));
    this.learnedPositions = this.child(
      'positions',
      new LearnedPositions1D({ maxLength: this.maxLength, dim: this.dim, seed: this.childSeed('positions') }),
    );
    this.memoryProjection = this.child(
      'memoryProjection',
      new Linear({ inputDim: this.memoryWidth, units: this.dim, seed: this.childSeed('memoryProjection') }),
    );
    const layers: DecoderLayerBase[] = [];
    for (let i = 0; i < this.numLayers; i++) {
      const name = `layer${i}`;
      const layerArgs = { dim: this.dim, numHeads: this.numHeads, ffnDim: this.ffnDim, dropout: this.dropoutRate, seed: this.childSeed(name) };
      const layer =
        layerType === 'plain'
          ? new PlainDecoderLayer(layerArgs)
          : new GatedDecoderLayer({ ...layerArgs, gate: layerType === 'gated' ? 'paper' : 'reference' });
      layers.push(this.child(name, layer));
    }
    this.layers = layers;
    this.head = this.child('head', new Linear({ inputDim: this.dim, units: this.vocabSize, seed: this.childSeed('head') }));
    this.sinusoid = sinusoidalTable(this.maxLength, this.dim);
  }

  override build(): void {
    this.embedding.ensureBuilt([null]);
    this.learnedPositions.ensureBuilt([null]);
    this.memoryProjection.ensureBuilt([null, this.memoryWidth]);
    for (const layer of this.layers) layer.ensureBuilt([null, this.dim]);
    this.head.ensureBuilt([null, this.dim]);
    this.built = true;
  }

  /** Word features of `tokens` [R, T] at positions offset..offset+T-1 -> [R, T, dim]. */
  private embed(tokens: tf.Tensor2D, offset: number, options: ForwardOptions | undefined): tf.Tensor3D {
    const length = tokens.shape[1];
    if (offset + length > this.maxLength) {
      throw new ShapeError(
        'TransformerCaptionDecoder',
        'tokens',
        `positions ${offset}..${offset + length - 1} exceed maxLength ${this.maxLength} (raise maxLength or shorten the captions)`,
      );
    }
    return tf.tidy(() => {
      const x = embedTokens(this.embedding, this.learnedPositions, this.sinusoid, tokens, offset);
      return dropout(x, this.dropoutRate, this.dropoutSeed(options, 'embedding')) as tf.Tensor3D;
    });
  }

  private checkMemory(memory: tf.Tensor3D): void {
    assertRank('TransformerCaptionDecoder', 'memory', memory, 3);
    if (memory.shape[2] !== this.memoryWidth) {
      throw new ShapeError('TransformerCaptionDecoder', 'memory', `expected width ${this.memoryWidth}, found shape [${memory.shape.join(', ')}]`);
    }
  }

  /** Teacher forcing: `memory` [B,N,D], `tokens` [B*c,T] int32 (inputs, `<start>` first) -> logits [B*c,T,V]. */
  forward(memory: tf.Tensor3D, tokens: tf.Tensor2D, options: CaptionForwardOptions = {}): CaptionDecoderOutput {
    this.ensureBuilt([null, this.memoryWidth]);
    this.checkMemory(memory);
    assertRank('TransformerCaptionDecoder', 'tokens', tokens, 2);
    assertDtype('TransformerCaptionDecoder', 'tokens', tokens, 'int32');
    const captionsPerImage = options.captionsPerImage ?? 1;
    if (!Number.isInteger(captionsPerImage) || captionsPerImage < 1) {
      throw new ShapeError('TransformerCaptionDecoder', 'captionsPerImage', `expected a positive integer, found ${captionsPerImage}`);
    }
    if (tokens.shape[0] !== memory.shape[0] * captionsPerImage) {
      throw new ShapeError(
        'TransformerCaptionDecoder',
        'tokens',
        `expected ${memory.shape[0]} images x ${captionsPerImage} captions = ${memory.shape[0] * captionsPerImage} rows, found ${tokens.shape[0]}`,
      );
    }
    return tf.tidy(() => {
      const projectedMemory = this.memoryProjection.forward(memory) as tf.Tensor3D;
      let x = this.embed(tokens, 0, options);
      const crossAttention: tf.Tensor4D[] = [];
      for (const layer of this.layers) {
        const keyValue = layer.crossAttention.projectKeyValue(projectedMemory);
        const selfKeyValue = layer.selfAttention.projectKeyValue(x);
        const result = layer.run(x, selfKeyValue, 0, { keyValue, rowsPerMemory: captionsPerImage }, options);
        if (result.crossAttention) crossAttention.push(result.crossAttention);
        x = result.output;
      }
      const logits = this.head.forward(x) as tf.Tensor3D;
      return options.returnAttention ? { logits, crossAttention } : { logits };
    });
  }

  /** Projects the memory [B,N,D] once for step-wise decoding: one row per image, no words yet. */
  initState(memory: tf.Tensor3D): CaptionDecoderState {
    this.ensureBuilt([null, this.memoryWidth]);
    this.checkMemory(memory);
    const memoryKeyValues = tidyStructured(() => {
      const projectedMemory = this.memoryProjection.forward(memory) as tf.Tensor3D;
      return this.layers.map((layer) => layer.crossAttention.projectKeyValue(projectedMemory));
    });
    const rows = memory.shape[0];
    return { memoryKeyValues, memoryItems: rows, rows, selfKeyValues: this.layers.map(() => null), length: 0 };
  }

  /**
   * Feeds one word per row (`tokens` [rows] int32) and returns the next-word logits [rows,V]; with
   * `returnAttention`, also the last layer's cross-attention averaged over heads [rows,N]. Consumes `state`.
   */
  step(tokens: tf.Tensor1D, state: CaptionDecoderState, options: { returnAttention?: boolean } = {}): DecodeStepOutput<CaptionDecoderState> {
    assertRank('TransformerCaptionDecoder', 'tokens', tokens, 1);
    assertDtype('TransformerCaptionDecoder', 'tokens', tokens, 'int32');
    if (tokens.shape[0] !== state.rows) {
      throw new ShapeError('TransformerCaptionDecoder', 'tokens', `expected ${state.rows} rows (one per hypothesis), found ${tokens.shape[0]}`);
    }
    const rowsPerMemory = state.rows / state.memoryItems;
    const lastLayer = this.layers.length - 1;
    const result = tidyStructured(() => {
      let x = this.embed(tf.reshape(tokens, [state.rows, 1]) as tf.Tensor2D, state.length, undefined);
      const selfKeyValues: KeyValue[] = [];
      let attention = undefined as tf.Tensor2D | undefined;
      for (let i = 0; i <= lastLayer; i++) {
        const layer = this.layers[i]!;
        const cache = layer.selfAttention.appendKeyValue(state.selfKeyValues[i] ?? null, x);
        selfKeyValues.push(cache);
        const wantAttention = options.returnAttention === true && i === lastLayer;
        const out = layer.run(x, cache, state.length, { keyValue: state.memoryKeyValues[i]!, rowsPerMemory }, { returnAttention: wantAttention });
        if (out.crossAttention) {
          attention = tf.reshape(tf.mean(out.crossAttention, 1), [state.rows, -1]) as tf.Tensor2D;
          out.crossAttention.dispose();
        }
        x = out.output;
      }
      const logits = tf.reshape(this.head.forward(x), [state.rows, this.vocabSize]) as tf.Tensor2D;
      return { logits, attention, selfKeyValues };
    });
    disposeKeyValues(state.selfKeyValues);
    const next: CaptionDecoderState = { ...state, selfKeyValues: result.selfKeyValues, length: state.length + 1 };
    return result.attention ? { logits: result.logits, state: next, attention: result.attention } : { logits: result.logits, state: next };
  }

  /**
   * Row `i` of the new state is row `indices[i]` of `state` (beam search keeps and expands hypotheses); the row
   * count may change. Consumes `state`. When every new row still reads the memory item of its group
   * (`rows/memoryItems` consecutive rows per item), the memory keys/values are kept as they are; otherwise they
   * are gathered per row.
   */
  reorderState(state: CaptionDecoderState, indices: tf.Tensor1D): CaptionDecoderState {
    assertRank('TransformerCaptionDecoder', 'indices', indices, 1);
    assertDtype('TransformerCaptionDecoder', 'indices', indices, 'int32');
    const source = indices.dataSync();
    const newRows = source.length;
    for (let i = 0; i < newRows; i++) {
      const j = source[i]!;
      if (j < 0 || j >= state.rows) throw new ShapeError('TransformerCaptionDecoder', 'indices', `index ${j} at ${i} is outside 0..${state.rows - 1}`);
    }
    const oldPerItem = state.rows / state.memoryItems;
    let memoryItems = state.memoryItems;
    let memoryKeyValues = state.memoryKeyValues;
    let keepMemory = newRows > 0 && newRows % state.memoryItems === 0;
    if (keepMemory) {
      const newPerItem = newRows / state.memoryItems;
      for (let i = 0; i < newRows && keepMemory; i++) {
        keepMemory = Math.floor(source[i]! / oldPerItem) === Math.floor(i / newPerItem);
      }
    }
    if (!keepMemory) {
      const items = new Int32Array(newRows);
      for (let i = 0; i < newRows; i++) items[i] = Math.floor(source[i]! / oldPerItem);
      memoryKeyValues = tidyStructured(() => {
        const itemIndices = tf.tensor1d(items, 'int32');
        return state.memoryKeyValues.map((kv) => gatherKeyValue(kv, itemIndices));
      });
      disposeKeyValues(state.memoryKeyValues);
      memoryItems = newRows;
    }
    const selfKeyValues = tidyStructured(() => state.selfKeyValues.map((kv) => (kv ? gatherKeyValue(kv, indices) : null)));
    disposeKeyValues(state.selfKeyValues);
    return { memoryKeyValues, memoryItems, rows: newRows, selfKeyValues, length: state.length };
  }

  disposeState(state: CaptionDecoderState): void {
    disposeKeyValues(state.memoryKeyValues);
    disposeKeyValues(state.selfKeyValues);
  }

  override call(inputs: tf.Tensor | tf.Tensor[], kwargs: Record<string, unknown>): tf.Tensor {
    const [memory, tokens] = (Array.isArray(inputs) ? inputs : [inputs]) as [tf.Tensor3D, tf.Tensor2D];
    if (!memory || !tokens) throw new ShapeError('TransformerCaptionDecoder', 'inputs', 'expected [memory [B,N,D], tokens [B,T]]');
    const options = kwargs as CaptionForwardOptions;
    return this.forward(memory, tokens, { ...options, returnAttention: false }).logits;
  }

  override computeOutputShape(inputShape: tfl.Shape | tfl.Shape[]): tfl.Shape {
    const tokens = (inputShape as tfl.Shape[])[1] ?? [null, null];
    return [tokens[0] ?? null, tokens[1] ?? null, this.vocabSize];
  }

  override getConfig(): tf.serialization.ConfigDict {
    return {
      ...super.getConfig(),
      layerType: this.layerType,
      vocabSize: this.vocabSize,
      memoryWidth: this.memoryWidth,
      dim: this.dim,
      numLayers: this.numLayers,
      numHeads: this.numHeads,
      ffnDim: this.ffnDim,
      dropout: this.dropoutRate,
      maxLength: this.maxLength,
      seed: this.seed,
    };
  }
}

/**
 * `tf.tidy` for results held in interfaces (such as `KeyValue`), which TypeScript does not accept as a
 * `TensorContainer` because interfaces have no index signature; tidy itself walks any object.
 */
function tidyStructured<T>(fn: () => T): T {
  return tf.tidy(fn as unknown as () => tf.TensorContainer) as unknown as T;
}

function gatherKeyValue(kv: KeyValue, indices: tf.Tensor1D): KeyValue {
  return { keys: tf.gather(kv.keys, indices, 0) as tf.Tensor4D, values: tf.gather(kv.values, indices, 0) as tf.Tensor4D };
}

function disposeKeyValues(list: readonly (KeyValue | null)[]): void {
  for (const kv of list) if (kv) tf.dispose([kv.keys, kv.values]);
}
