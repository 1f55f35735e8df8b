import * as tf from '@tensorflow/tfjs-core';
import type * as tfl from '@tensorflow/tfjs-layers';
import {
  Embedding,
  LearnedPositions1D,
  Linear,
  S2Layer,
  ShapeError,
  assertRank,
  dropout,
  sinusoidalTable,
  embedTokens,
  type CategoryHead,
  type ForwardOptions,
  type KeyValue,
  type S2LayerArgs,
} from '@s2cpnet/core';
import { resolveNextNounSizes, type NextNounSizes } from './config';
import { sequenceCrossEntropy } from './loss';
import type { CategoryTargetKind } from './multi-label';
import { QueryDecoderLayer } from './query-decoder-layer';

export interface NextNounCategoryDecoderArgs extends S2LayerArgs, NextNounSizes {}

export interface NextNounForwardOptions extends ForwardOptions {
  /**
   * Teacher forcing: the target noun sequences [B,S] (noun ids, then `<end>`, then `<pad>`; S <= maxNouns+1), as
   * built by `nounSequenceTargets`. Without them, the head generates greedily for maxNouns+1 steps.
   */
  nounTokens?: tf.Tensor2D;
}

/**
 * The released code's noun task (spec section 9, an option): generate the image's nouns one after another over
 * the caption vocabulary, with softmax cross-entropy, at most `maxNouns` nouns then `<end>`. A small causal
 * post-norm transformer decoder over the projected memory:
 * ```
 * x_0 = sqrt(dim) * Embedding(<start>, n_1, ..., n_{S-1}) + sinusoidal(pos) + learned(pos)
 * x_l = QueryDecoderLayer_l(x_{l-1}, M) with a causal mask;   logits = Linear(dim -> V)(x_L)   [B,S,V]
 * ```
 * As a `CategoryHead`, `logits(memory, { nounTokens })` returns the step logits flattened to [B, S*V] (a
 * Tensor2D, as the interface requires) and `loss(logits, targets)` takes the sequences [B,S]. Without
 * `nounTokens`, `logits` decodes greedily with cached keys/values (one position per step) for S = maxNouns+1
 * steps. `targetKind` is 'sequence' so that the assembly knows which targets to build.
 */
export class NextNounCategoryDecoder extends S2Layer implements CategoryHead {
  static readonly className = 'NextNounCategoryDecoder';
  readonly targetKind: CategoryTargetKind = 'sequence';
  readonly numClasses: number;
  readonly vocabSize: number;
  readonly memoryWidth: number;
  readonly dim: number;
  readonly numLayers: number;
  readonly numHeads: number;
  readonly ffnDim: number;
  readonly dropoutRate: number;
  readonly maxNouns: number;
  readonly startId: number;
  readonly endId: number;
  readonly padId: number;
  readonly embedding: Embedding;
  readonly learnedPositions: LearnedPositions1D;
  readonly memoryProjection: Linear;
  readonly layers: readonly QueryDecoderLayer[];
  readonly head: Linear;
  private readonly sinusoid: Float32Array;

  constructor(args: NextNounCategoryDecoderArgs) {
    super(args);
    const sizes = resolveNextNounSizes(args);
    this.vocabSize = sizes.vocabSize;
    this.numClasses = sizes.vocabSize;
    this.memoryWidth = sizes.memoryWidth;
    this.dim = sizes.dim;
    this.numLayers = sizes.numLayers;
    this.numHeads = sizes.numHeads;
    this.ffnDim = sizes.ffnDim;
    this.dropoutRate = sizes.dropout;
    this.maxNouns = sizes.maxNouns;
    this.startId = sizes.startId;
    this.endId = sizes.endId;
    this.padId = sizes.padId;
    this.embedding = this.child('embedding', new Embedding({ vocabSize: this.vocabSize, dim: this.dim, seed: this.childSeed('embedding') }));
    this.learnedPositions = this.child(
      'positions',
      new LearnedPositions1D({ maxLength: this.steps, dim: this.dim, seed: this.childSeed('positions') }),
    );
    this.memoryProjection = this.child(
      'memoryProjection',
      new Linear({ inputDim: this.memoryWidth, units: this.dim, seed: this.childSeed('memoryProjection') }),
    );
    this.layers = Array.from({ length: this.numLayers }, (_, i) =>
      this.child(
        `layer${i}`,
        new QueryDecoderLayer({ dim: this.dim, numHeads: this.numHeads, ffnDim: this.ffnDim, dropout: this.dropoutRate, seed: this.childSeed(`layer${i}`) }),
      ),
    );
    this.head = this.child('head', new Linear({ inputDim: this.dim, units: this.vocabSize, seed: this.childSeed('head') }));
    this.sinusoid = sinusoidalTable(this.steps, this.dim);
  }

  /** Positions of a full sequence: maxNouns nouns and `<end>`. */
  get steps(): number {
    return this.maxNouns + 1;
  }

  override build(): void {
    this.embedding.ensureBuilt([null]);
    this.learnedPositions.ensureBuilt([null]);
    this.memoryProjection.ensureBuilt([null, this.memoryWidth]);
    for (const layer of this.layers) layer.ensureBuilt([null, this.dim]);
    this.head.ensureBuilt([null, this.dim]);
    this.built = true;
  }

  private embed(tokens: tf.Tensor2D, offset: number, options: ForwardOptions): tf.Tensor3D {
    return tf.tidy(() => {
      const x = embedTokens(this.embedding, this.learnedPositions, this.sinusoid, tokens, offset);
      return dropout(x, this.dropoutRate, this.dropoutSeed(options, 'embedding')) as tf.Tensor3D;
    });
  }

  private checkMemory(memory: tf.Tensor3D): void {
    assertRank('NextNounCategoryDecoder', 'memory', memory, 3);
    if (memory.shape[2] !== this.memoryWidth) {
      throw new ShapeError('NextNounCategoryDecoder', 'memory', `expected width ${this.memoryWidth}, found shape [${memory.shape.join(', ')}]`);
    }
  }

  /** Teacher forcing: `nounTokens` [B,S] (targets) -> step logits [B,S,V]; the inputs are `<start>` and the targets shifted right. */
  sequenceLogits(memory: tf.Tensor3D, nounTokens: tf.Tensor2D, options: ForwardOptions = {}): tf.Tensor3D {
    this.ensureBuilt([null, this.memoryWidth]);
    this.checkMemory(memory);
    assertRank('NextNounCategoryDecoder', 'nounTokens', nounTokens, 2);
    const [batch, length] = nounTokens.shape;
    if (batch !== memory.shape[0]) {
      throw new ShapeError('NextNounCategoryDecoder', 'nounTokens', `expected ${memory.shape[0]} rows (one per image), found ${batch}`);
    }
    if (length < 1 || length > this.steps) {
      throw new ShapeError('NextNounCategoryDecoder', 'nounTokens', `expected 1..${this.steps} steps (maxNouns ${this.maxNouns} and <end>), found ${length}`);
    }
    return tf.tidy(() => {
      const targets = tf.cast(nounTokens, 'int32');
      const start = tf.fill([batch, 1], this.startId, 'int32');
      const inputs = length === 1 ? start : tf.concat([start, tf.slice(targets, [0, 0], [batch, length - 1])], 1);
      const projected = this.memoryProjection.forward(memory) as tf.Tensor3D;
      let x = this.embed(inputs as tf.Tensor2D, 0, options);
      for (const layer of this.layers) {
        x = layer.run(x, layer.selfAttention.projectKeyValue(x), 0, layer.crossAttention.projectKeyValue(projected), { ...options, causal: true });
      }
      return this.head.forward(x) as tf.Tensor3D;
    });
  }

  /**
   * Greedy generation for `steps` steps (default maxNouns+1) with cached keys/values; returns the step logits
   * [B,steps,V] (differentiable given the chosen words) and the chosen words [B,steps].
   */
  generate(memory: tf.Tensor3D, options: ForwardOptions & { steps?: number } = {}): { logits: tf.Tensor3D; tokens: tf.Tensor2D } {
    this.ensureBuilt([null, this.memoryWidth]);
    this.checkMemory(memory);
    const steps = options.steps ?? this.steps;
    if (!Number.isInteger(steps) || steps < 1 || steps > this.steps) {
      throw new ShapeError('NextNounCategoryDecoder', 'steps', `expected 1..${this.steps}, found ${steps}`);
    }
    const batch = memory.shape[0];
    return tf.tidy(() => {
      const projected = this.memoryProjection.forward(memory) as tf.Tensor3D;
      const memoryKeyValues = this.layers.map((layer) => layer.crossAttention.projectKeyValue(projected));
      let caches: (KeyValue | null)[] = this.layers.map(() => null);
      let token = tf.fill([batch, 1], this.startId, 'int32') as tf.Tensor2D;
      const stepLogits: tf.Tensor3D[] = [];
      const chosen: tf.Tensor2D[] = [];
      for (let s = 0; s < steps; s++) {
        let x = this.embed(token, s, options);
        const next: KeyValue[] = [];
        this.layers.forEach((layer, l) => {
          const cache = layer.selfAttention.appendKeyValue(caches[l] ?? null, x);
          next.push(cache);
          x = layer.run(x, cache, s, memoryKeyValues[l]!, { ...options, causal: true });
        });
        caches = next;
        const logits = this.head.forward(x) as tf.Tensor3D; // [B,1,V]
        stepLogits.push(logits);
        token = tf.cast(tf.reshape(tf.argMax(logits, -1), [batch, 1]), 'int32') as tf.Tensor2D;
        chosen.push(token);
      }
      return { logits: tf.concat(stepLogits, 1) as tf.Tensor3D, tokens: tf.concat(chosen, 1) as tf.Tensor2D };
    });
  }

  /**
   * `CategoryHead.logits`: step logits flattened to [B, S*V]: teacher-forced when `options.nounTokens` is given
   * (S = its length), generated greedily otherwise (S = maxNouns+1).
   */
  logits(memory: tf.Tensor3D, options: NextNounForwardOptions = {}): tf.Tensor2D {
    const { nounTokens, ...forward } = options;
    return tf.tidy(() => {
      const steps = nounTokens ? this.sequenceLogits(memory, nounTokens, forward) : this.generate(memory, forward).logits;
      return tf.reshape(steps, [memory.shape[0], -1]) as tf.Tensor2D;
    });
  }

  /** Mean softmax cross-entropy of flattened step logits [B, S*V] against the noun sequences `targets` [B,S], ignoring `<pad>`. */
  loss(logits: tf.Tensor2D, targets: tf.Tensor2D): tf.Scalar {
    assertRank('NextNounCategoryDecoder', 'targets', targets, 2);
    const [batch, steps] = targets.shape;
    if (logits.shape[0] !== batch || logits.shape[1] !== steps * this.vocabSize) {
      throw new ShapeError(
        'NextNounCategoryDecoder',
        'logits',
        `expected [${batch}, ${steps} steps x ${this.vocabSize} words = ${steps * this.vocabSize}] for targets [${batch}, ${steps}], found [${logits.shape.join(', ')}]`,
      );
    }
    return tf.tidy(() => sequenceCrossEntropy(tf.reshape(logits, [batch, steps, this.vocabSize]) as tf.Tensor3D, targets, this.padId));
  }

  /** The generated nouns of each image as caption-vocabulary ids (greedy, until `<end>`, without repeats). */
  predictNounIds(memory: tf.Tensor3D): number[][] {
    const { logits, tokens } = this.generate(memory);
    const rows = tokens.arraySync();
    tf.dispose([logits, tokens]);
    return rows.map((row) => {
      const out: number[] = [];
      for (const id of row) {
        if (id === this.endId) break;
        if (id !== this.padId && id !== this.startId && !out.includes(id)) out.push(id);
      }
      return out;
    });
  }

  override call(inputs: tf.Tensor | tf.Tensor[], kwargs: Record<string, unknown>): tf.Tensor {
    const list = Array.isArray(inputs) ? inputs : [inputs];
    const memory = list[0] as tf.Tensor3D;
    const nounTokens = list[1] as tf.Tensor2D | undefined;
    return this.logits(memory, { ...(kwargs as ForwardOptions), nounTokens });
  }

  override computeOutputShape(inputShape: tfl.Shape | tfl.Shape[]): tfl.Shape {
    const shapes = (Array.isArray(inputShape[0]) ? inputShape : [inputShape]) as tfl.Shape[];
    const steps = shapes[1]?.[1] ?? this.steps;
    return [shapes[0]![0] ?? null, steps === null ? null : steps * this.vocabSize];
  }

  override getConfig(): tf.serialization.ConfigDict {
    return {
      ...super.getConfig(),
      vocabSize: this.vocabSize,
      memoryWidth: this.memoryWidth,
      dim: this.dim,
      numLayers: this.numLayers,
      numHeads: this.numHeads,
      ffnDim: this.ffnDim,
      dropout: this.dropoutRate,
      maxNouns: this.maxNouns,
      startId: this.startId,
      endId: this.endId,
      padId: this.padId,
      seed: this.seed,
    };
  }
}

/**
 * Builds next-noun targets [B, maxNouns+1] int32 from per-image noun id lists: each list is cut to `maxNouns`,
 * followed by `<end>` and padded with `<pad>`.
 *
 * @example
 * ```ts
 * const targets = nounSequenceTargets([[17, 40], [9]], { maxNouns: 12, endId: 2, padId: 0 });
 * ```
 */
export function nounSequenceTargets(nouns: readonly (readonly number[])[], options: { maxNouns: number; endId: number; padId?: number }): tf.Tensor2D {
  const steps = options.maxNouns + 1;
  const values = new Int32Array(nouns.length * steps).fill(options.padId ?? 0);
  nouns.forEach((list, b) => {
    const kept = list.slice(0, options.maxNouns);
    kept.forEach((id, s) => (values[b * steps + s] = id));
    values[b * steps + kept.length] = options.endId;
  });
  return tf.tensor2d(values, [nouns.length, steps], 'int32');
}
